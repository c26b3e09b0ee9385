
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'hoopctl' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'hoopctl'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'hoopctl' {
            [CompletionResult]::new('--broker', '--broker', [CompletionResultType]::ParameterName, 'Broker URL, e.g. https://hoop.example.com:8443 [default: $HOOP_BROKER, then config.toml]')
            [CompletionResult]::new('--ca-file', '--ca-file', [CompletionResultType]::ParameterName, 'PEM file with the CA certificate that signs the broker''s TLS certificate, when it is not in the system trust store [default: $HOOP_CA_FILE, then config.toml]')
            [CompletionResult]::new('--token-file', '--token-file', [CompletionResultType]::ParameterName, 'Read the bearer token from this file instead of the stored login (a CI job''s OIDC token, a Kubernetes projected token); re-read when the token in it expires')
            [CompletionResult]::new('--audience', '--audience', [CompletionResultType]::ParameterName, 'Audience to request when hoopctl fetches a GitHub Actions OIDC token [default: $HOOP_AUDIENCE, then "hoop"]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('login', 'login', [CompletionResultType]::ParameterValue, 'Log in with your identity provider (OAuth device flow) and store the tokens')
            [CompletionResult]::new('logout', 'logout', [CompletionResultType]::ParameterValue, 'Forget the stored login (keyring entry and token file)')
            [CompletionResult]::new('whoami', 'whoami', [CompletionResultType]::ParameterValue, 'Show who the broker sees you as, and when your login expires')
            [CompletionResult]::new('connections', 'connections', [CompletionResultType]::ParameterValue, 'List the connections you may open')
            [CompletionResult]::new('ls', 'ls', [CompletionResultType]::ParameterValue, 'List the connections you may open')
            [CompletionResult]::new('connect', 'connect', [CompletionResultType]::ParameterValue, 'Open a session on a connection and tunnel local clients to it')
            [CompletionResult]::new('exec', 'exec', [CompletionResultType]::ParameterValue, 'Run SQL (or a client command) on a connection, for scripts and CI; never prompts')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'hoopctl;login' {
            [CompletionResult]::new('--broker', '--broker', [CompletionResultType]::ParameterName, 'Broker URL, e.g. https://hoop.example.com:8443 [default: $HOOP_BROKER, then config.toml]')
            [CompletionResult]::new('--ca-file', '--ca-file', [CompletionResultType]::ParameterName, 'PEM file with the CA certificate that signs the broker''s TLS certificate, when it is not in the system trust store [default: $HOOP_CA_FILE, then config.toml]')
            [CompletionResult]::new('--token-file', '--token-file', [CompletionResultType]::ParameterName, 'Read the bearer token from this file instead of the stored login (a CI job''s OIDC token, a Kubernetes projected token); re-read when the token in it expires')
            [CompletionResult]::new('--audience', '--audience', [CompletionResultType]::ParameterName, 'Audience to request when hoopctl fetches a GitHub Actions OIDC token [default: $HOOP_AUDIENCE, then "hoop"]')
            [CompletionResult]::new('--no-browser', '--no-browser', [CompletionResultType]::ParameterName, 'Do not try to open a browser; only print the URL and the code')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'hoopctl;logout' {
            [CompletionResult]::new('--broker', '--broker', [CompletionResultType]::ParameterName, 'Broker URL, e.g. https://hoop.example.com:8443 [default: $HOOP_BROKER, then config.toml]')
            [CompletionResult]::new('--ca-file', '--ca-file', [CompletionResultType]::ParameterName, 'PEM file with the CA certificate that signs the broker''s TLS certificate, when it is not in the system trust store [default: $HOOP_CA_FILE, then config.toml]')
            [CompletionResult]::new('--token-file', '--token-file', [CompletionResultType]::ParameterName, 'Read the bearer token from this file instead of the stored login (a CI job''s OIDC token, a Kubernetes projected token); re-read when the token in it expires')
            [CompletionResult]::new('--audience', '--audience', [CompletionResultType]::ParameterName, 'Audience to request when hoopctl fetches a GitHub Actions OIDC token [default: $HOOP_AUDIENCE, then "hoop"]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'hoopctl;whoami' {
            [CompletionResult]::new('--broker', '--broker', [CompletionResultType]::ParameterName, 'Broker URL, e.g. https://hoop.example.com:8443 [default: $HOOP_BROKER, then config.toml]')
            [CompletionResult]::new('--ca-file', '--ca-file', [CompletionResultType]::ParameterName, 'PEM file with the CA certificate that signs the broker''s TLS certificate, when it is not in the system trust store [default: $HOOP_CA_FILE, then config.toml]')
            [CompletionResult]::new('--token-file', '--token-file', [CompletionResultType]::ParameterName, 'Read the bearer token from this file instead of the stored login (a CI job''s OIDC token, a Kubernetes projected token); re-read when the token in it expires')
            [CompletionResult]::new('--audience', '--audience', [CompletionResultType]::ParameterName, 'Audience to request when hoopctl fetches a GitHub Actions OIDC token [default: $HOOP_AUDIENCE, then "hoop"]')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Also show the broker URL, the issuer and where the login is stored')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Also show the broker URL, the issuer and where the login is stored')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'hoopctl;connections' {
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--broker', '--broker', [CompletionResultType]::ParameterName, 'Broker URL, e.g. https://hoop.example.com:8443 [default: $HOOP_BROKER, then config.toml]')
            [CompletionResult]::new('--ca-file', '--ca-file', [CompletionResultType]::ParameterName, 'PEM file with the CA certificate that signs the broker''s TLS certificate, when it is not in the system trust store [default: $HOOP_CA_FILE, then config.toml]')
            [CompletionResult]::new('--token-file', '--token-file', [CompletionResultType]::ParameterName, 'Read the bearer token from this file instead of the stored login (a CI job''s OIDC token, a Kubernetes projected token); re-read when the token in it expires')
            [CompletionResult]::new('--audience', '--audience', [CompletionResultType]::ParameterName, 'Audience to request when hoopctl fetches a GitHub Actions OIDC token [default: $HOOP_AUDIENCE, then "hoop"]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'hoopctl;ls' {
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--broker', '--broker', [CompletionResultType]::ParameterName, 'Broker URL, e.g. https://hoop.example.com:8443 [default: $HOOP_BROKER, then config.toml]')
            [CompletionResult]::new('--ca-file', '--ca-file', [CompletionResultType]::ParameterName, 'PEM file with the CA certificate that signs the broker''s TLS certificate, when it is not in the system trust store [default: $HOOP_CA_FILE, then config.toml]')
            [CompletionResult]::new('--token-file', '--token-file', [CompletionResultType]::ParameterName, 'Read the bearer token from this file instead of the stored login (a CI job''s OIDC token, a Kubernetes projected token); re-read when the token in it expires')
            [CompletionResult]::new('--audience', '--audience', [CompletionResultType]::ParameterName, 'Audience to request when hoopctl fetches a GitHub Actions OIDC token [default: $HOOP_AUDIENCE, then "hoop"]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'hoopctl;connect' {
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'Local port to listen on (127.0.0.1); 0 picks a free port')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'Local port to listen on (127.0.0.1); 0 picks a free port')
            [CompletionResult]::new('-r', '-r', [CompletionResultType]::ParameterName, 'Why you need access; recorded with the session')
            [CompletionResult]::new('--reason', '--reason', [CompletionResultType]::ParameterName, 'Why you need access; recorded with the session')
            [CompletionResult]::new('--broker', '--broker', [CompletionResultType]::ParameterName, 'Broker URL, e.g. https://hoop.example.com:8443 [default: $HOOP_BROKER, then config.toml]')
            [CompletionResult]::new('--ca-file', '--ca-file', [CompletionResultType]::ParameterName, 'PEM file with the CA certificate that signs the broker''s TLS certificate, when it is not in the system trust store [default: $HOOP_CA_FILE, then config.toml]')
            [CompletionResult]::new('--token-file', '--token-file', [CompletionResultType]::ParameterName, 'Read the bearer token from this file instead of the stored login (a CI job''s OIDC token, a Kubernetes projected token); re-read when the token in it expires')
            [CompletionResult]::new('--audience', '--audience', [CompletionResultType]::ParameterName, 'Audience to request when hoopctl fetches a GitHub Actions OIDC token [default: $HOOP_AUDIENCE, then "hoop"]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'hoopctl;exec' {
            [CompletionResult]::new('-r', '-r', [CompletionResultType]::ParameterName, 'Why you need access; recorded with the session')
            [CompletionResult]::new('--reason', '--reason', [CompletionResultType]::ParameterName, 'Why you need access; recorded with the session')
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'SQL to run (repeatable; each is one query, run in order)')
            [CompletionResult]::new('--sql', '--sql', [CompletionResultType]::ParameterName, 'SQL to run (repeatable; each is one query, run in order)')
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'File with SQL to run (`-` reads stdin)')
            [CompletionResult]::new('--file', '--file', [CompletionResultType]::ParameterName, 'File with SQL to run (`-` reads stdin)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format for results')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format for results')
            [CompletionResult]::new('--wait', '--wait', [CompletionResultType]::ParameterName, 'How long to wait for an approval when the connection requires one, e.g. 10m [default: do not wait: exit with status 3 and the request id]')
            [CompletionResult]::new('--broker', '--broker', [CompletionResultType]::ParameterName, 'Broker URL, e.g. https://hoop.example.com:8443 [default: $HOOP_BROKER, then config.toml]')
            [CompletionResult]::new('--ca-file', '--ca-file', [CompletionResultType]::ParameterName, 'PEM file with the CA certificate that signs the broker''s TLS certificate, when it is not in the system trust store [default: $HOOP_CA_FILE, then config.toml]')
            [CompletionResult]::new('--token-file', '--token-file', [CompletionResultType]::ParameterName, 'Read the bearer token from this file instead of the stored login (a CI job''s OIDC token, a Kubernetes projected token); re-read when the token in it expires')
            [CompletionResult]::new('--audience', '--audience', [CompletionResultType]::ParameterName, 'Audience to request when hoopctl fetches a GitHub Actions OIDC token [default: $HOOP_AUDIENCE, then "hoop"]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'hoopctl;completions' {
            [CompletionResult]::new('--broker', '--broker', [CompletionResultType]::ParameterName, 'Broker URL, e.g. https://hoop.example.com:8443 [default: $HOOP_BROKER, then config.toml]')
            [CompletionResult]::new('--ca-file', '--ca-file', [CompletionResultType]::ParameterName, 'PEM file with the CA certificate that signs the broker''s TLS certificate, when it is not in the system trust store [default: $HOOP_CA_FILE, then config.toml]')
            [CompletionResult]::new('--token-file', '--token-file', [CompletionResultType]::ParameterName, 'Read the bearer token from this file instead of the stored login (a CI job''s OIDC token, a Kubernetes projected token); re-read when the token in it expires')
            [CompletionResult]::new('--audience', '--audience', [CompletionResultType]::ParameterName, 'Audience to request when hoopctl fetches a GitHub Actions OIDC token [default: $HOOP_AUDIENCE, then "hoop"]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'hoopctl;help' {
            [CompletionResult]::new('login', 'login', [CompletionResultType]::ParameterValue, 'Log in with your identity provider (OAuth device flow) and store the tokens')
            [CompletionResult]::new('logout', 'logout', [CompletionResultType]::ParameterValue, 'Forget the stored login (keyring entry and token file)')
            [CompletionResult]::new('whoami', 'whoami', [CompletionResultType]::ParameterValue, 'Show who the broker sees you as, and when your login expires')
            [CompletionResult]::new('connections', 'connections', [CompletionResultType]::ParameterValue, 'List the connections you may open')
            [CompletionResult]::new('connect', 'connect', [CompletionResultType]::ParameterValue, 'Open a session on a connection and tunnel local clients to it')
            [CompletionResult]::new('exec', 'exec', [CompletionResultType]::ParameterValue, 'Run SQL (or a client command) on a connection, for scripts and CI; never prompts')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'hoopctl;help;login' {
            break
        }
        'hoopctl;help;logout' {
            break
        }
        'hoopctl;help;whoami' {
            break
        }
        'hoopctl;help;connections' {
            break
        }
        'hoopctl;help;connect' {
            break
        }
        'hoopctl;help;exec' {
            break
        }
        'hoopctl;help;completions' {
            break
        }
        'hoopctl;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
