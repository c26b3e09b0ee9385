
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
            [CompletionResult]::new('requests', 'requests', [CompletionResultType]::ParameterValue, 'Your access requests: list, show, cancel, revoke')
            [CompletionResult]::new('approve', 'approve', [CompletionResultType]::ParameterValue, 'Requests waiting for your approval; approve one')
            [CompletionResult]::new('deny', 'deny', [CompletionResultType]::ParameterValue, 'Deny an access request waiting for your approval')
            [CompletionResult]::new('policy', 'policy', [CompletionResultType]::ParameterValue, 'Read, check, apply and test the access policy')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script')
            [CompletionResult]::new('audit', 'audit', [CompletionResultType]::ParameterValue, 'The tamper-evident audit log: list, export, verify (admins and auditors)')
            [CompletionResult]::new('sessions', 'sessions', [CompletionResultType]::ParameterValue, 'Recorded sessions: list, show, replay and export them')
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
            [CompletionResult]::new('-r', '-r', [CompletionResultType]::ParameterName, 'Why you need access; recorded with the session and shown to approvers')
            [CompletionResult]::new('--reason', '--reason', [CompletionResultType]::ParameterName, 'Why you need access; recorded with the session and shown to approvers')
            [CompletionResult]::new('--duration', '--duration', [CompletionResultType]::ParameterName, 'How long a grant to ask for when the connection needs an approval, e.g. 30m [default: the policy''s; capped by its maximum]')
            [CompletionResult]::new('--request', '--request', [CompletionResultType]::ParameterName, 'Use this access request (e.g. one made with --no-wait): wait for it if it is still pending, then open the session under its grant')
            [CompletionResult]::new('--max-local-connections', '--max-local-connections', [CompletionResultType]::ParameterName, 'Most local connections relayed at once through this tunnel; one more is refused with an error. Each local connection must present the tunnel''s one-time secret (or, for ssh, start its handshake) within 5 s, before the broker is contacted; see docs/tunnel.md')
            [CompletionResult]::new('--broker', '--broker', [CompletionResultType]::ParameterName, 'Broker URL, e.g. https://hoop.example.com:8443 [default: $HOOP_BROKER, then config.toml]')
            [CompletionResult]::new('--ca-file', '--ca-file', [CompletionResultType]::ParameterName, 'PEM file with the CA certificate that signs the broker''s TLS certificate, when it is not in the system trust store [default: $HOOP_CA_FILE, then config.toml]')
            [CompletionResult]::new('--token-file', '--token-file', [CompletionResultType]::ParameterName, 'Read the bearer token from this file instead of the stored login (a CI job''s OIDC token, a Kubernetes projected token); re-read when the token in it expires')
            [CompletionResult]::new('--audience', '--audience', [CompletionResultType]::ParameterName, 'Audience to request when hoopctl fetches a GitHub Actions OIDC token [default: $HOOP_AUDIENCE, then "hoop"]')
            [CompletionResult]::new('--no-wait', '--no-wait', [CompletionResultType]::ParameterName, 'When the connection needs an approval, ask for it, print the request id and exit with status 3 instead of waiting')
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
            [CompletionResult]::new('--wait', '--wait', [CompletionResultType]::ParameterName, 'How long to wait for an approval when the connection requires one, or for the review of a statement a guardrail holds (then it runs), e.g. 10m; alone: up to 24h [default: do not wait: exit with status 3 and the request id]')
            [CompletionResult]::new('--duration', '--duration', [CompletionResultType]::ParameterName, 'How long a grant to ask for when the connection needs an approval, e.g. 30m [default: the policy''s; capped by its maximum]')
            [CompletionResult]::new('--request', '--request', [CompletionResultType]::ParameterName, 'Use this access request (e.g. the id an earlier exec printed with status 3)')
            [CompletionResult]::new('--max-local-connections', '--max-local-connections', [CompletionResultType]::ParameterName, 'With a command: most local connections relayed at once (see `hoopctl connect --help`)')
            [CompletionResult]::new('--broker', '--broker', [CompletionResultType]::ParameterName, 'Broker URL, e.g. https://hoop.example.com:8443 [default: $HOOP_BROKER, then config.toml]')
            [CompletionResult]::new('--ca-file', '--ca-file', [CompletionResultType]::ParameterName, 'PEM file with the CA certificate that signs the broker''s TLS certificate, when it is not in the system trust store [default: $HOOP_CA_FILE, then config.toml]')
            [CompletionResult]::new('--token-file', '--token-file', [CompletionResultType]::ParameterName, 'Read the bearer token from this file instead of the stored login (a CI job''s OIDC token, a Kubernetes projected token); re-read when the token in it expires')
            [CompletionResult]::new('--audience', '--audience', [CompletionResultType]::ParameterName, 'Audience to request when hoopctl fetches a GitHub Actions OIDC token [default: $HOOP_AUDIENCE, then "hoop"]')
            [CompletionResult]::new('--no-wait', '--no-wait', [CompletionResultType]::ParameterName, 'Do not wait for an approval (the default; says so explicitly in scripts)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'hoopctl;requests' {
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format of the list')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format of the list')
            [CompletionResult]::new('--broker', '--broker', [CompletionResultType]::ParameterName, 'Broker URL, e.g. https://hoop.example.com:8443 [default: $HOOP_BROKER, then config.toml]')
            [CompletionResult]::new('--ca-file', '--ca-file', [CompletionResultType]::ParameterName, 'PEM file with the CA certificate that signs the broker''s TLS certificate, when it is not in the system trust store [default: $HOOP_CA_FILE, then config.toml]')
            [CompletionResult]::new('--token-file', '--token-file', [CompletionResultType]::ParameterName, 'Read the bearer token from this file instead of the stored login (a CI job''s OIDC token, a Kubernetes projected token); re-read when the token in it expires')
            [CompletionResult]::new('--audience', '--audience', [CompletionResultType]::ParameterName, 'Audience to request when hoopctl fetches a GitHub Actions OIDC token [default: $HOOP_AUDIENCE, then "hoop"]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'Your requests, newest first')
            [CompletionResult]::new('ls', 'ls', [CompletionResultType]::ParameterValue, 'Your requests, newest first')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'One request: state, reason, approvers, decisions, grant')
            [CompletionResult]::new('cancel', 'cancel', [CompletionResultType]::ParameterValue, 'Withdraw a pending request of yours')
            [CompletionResult]::new('revoke', 'revoke', [CompletionResultType]::ParameterValue, 'End a request''s grant now (its approvers and policy admins); its live sessions end')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'hoopctl;requests;list' {
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
        'hoopctl;requests;ls' {
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
        'hoopctl;requests;show' {
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
        'hoopctl;requests;cancel' {
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
        'hoopctl;requests;revoke' {
            [CompletionResult]::new('-r', '-r', [CompletionResultType]::ParameterName, 'Why; recorded and shown to the requester')
            [CompletionResult]::new('--reason', '--reason', [CompletionResultType]::ParameterName, 'Why; recorded and shown to the requester')
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
        'hoopctl;requests;help' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'Your requests, newest first')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'One request: state, reason, approvers, decisions, grant')
            [CompletionResult]::new('cancel', 'cancel', [CompletionResultType]::ParameterValue, 'Withdraw a pending request of yours')
            [CompletionResult]::new('revoke', 'revoke', [CompletionResultType]::ParameterValue, 'End a request''s grant now (its approvers and policy admins); its live sessions end')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'hoopctl;requests;help;list' {
            break
        }
        'hoopctl;requests;help;show' {
            break
        }
        'hoopctl;requests;help;cancel' {
            break
        }
        'hoopctl;requests;help;revoke' {
            break
        }
        'hoopctl;requests;help;help' {
            break
        }
        'hoopctl;approve' {
            [CompletionResult]::new('-m', '-m', [CompletionResultType]::ParameterName, 'Comment, recorded with your approval and shown to the requester')
            [CompletionResult]::new('--comment', '--comment', [CompletionResultType]::ParameterName, 'Comment, recorded with your approval and shown to the requester')
            [CompletionResult]::new('--broker', '--broker', [CompletionResultType]::ParameterName, 'Broker URL, e.g. https://hoop.example.com:8443 [default: $HOOP_BROKER, then config.toml]')
            [CompletionResult]::new('--ca-file', '--ca-file', [CompletionResultType]::ParameterName, 'PEM file with the CA certificate that signs the broker''s TLS certificate, when it is not in the system trust store [default: $HOOP_CA_FILE, then config.toml]')
            [CompletionResult]::new('--token-file', '--token-file', [CompletionResultType]::ParameterName, 'Read the bearer token from this file instead of the stored login (a CI job''s OIDC token, a Kubernetes projected token); re-read when the token in it expires')
            [CompletionResult]::new('--audience', '--audience', [CompletionResultType]::ParameterName, 'Audience to request when hoopctl fetches a GitHub Actions OIDC token [default: $HOOP_AUDIENCE, then "hoop"]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'Pending requests you may decide (never your own)')
            [CompletionResult]::new('ls', 'ls', [CompletionResultType]::ParameterValue, 'Pending requests you may decide (never your own)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'hoopctl;approve;list' {
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
        'hoopctl;approve;ls' {
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
        'hoopctl;approve;help' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'Pending requests you may decide (never your own)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'hoopctl;approve;help;list' {
            break
        }
        'hoopctl;approve;help;help' {
            break
        }
        'hoopctl;deny' {
            [CompletionResult]::new('-r', '-r', [CompletionResultType]::ParameterName, 'Why; shown to the requester (required)')
            [CompletionResult]::new('--reason', '--reason', [CompletionResultType]::ParameterName, 'Why; shown to the requester (required)')
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
        'hoopctl;policy' {
            [CompletionResult]::new('--broker', '--broker', [CompletionResultType]::ParameterName, 'Broker URL, e.g. https://hoop.example.com:8443 [default: $HOOP_BROKER, then config.toml]')
            [CompletionResult]::new('--ca-file', '--ca-file', [CompletionResultType]::ParameterName, 'PEM file with the CA certificate that signs the broker''s TLS certificate, when it is not in the system trust store [default: $HOOP_CA_FILE, then config.toml]')
            [CompletionResult]::new('--token-file', '--token-file', [CompletionResultType]::ParameterName, 'Read the bearer token from this file instead of the stored login (a CI job''s OIDC token, a Kubernetes projected token); re-read when the token in it expires')
            [CompletionResult]::new('--audience', '--audience', [CompletionResultType]::ParameterName, 'Audience to request when hoopctl fetches a GitHub Actions OIDC token [default: $HOOP_AUDIENCE, then "hoop"]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Print the policy in force, or write its files into a directory')
            [CompletionResult]::new('diff', 'diff', [CompletionResultType]::ParameterValue, 'Validate a policy file or directory and show what applying it would change (changes nothing)')
            [CompletionResult]::new('apply', 'apply', [CompletionResultType]::ParameterValue, 'Make a policy file or directory the policy in force (policy admins only)')
            [CompletionResult]::new('test', 'test', [CompletionResultType]::ParameterValue, 'Show how the policy decides for an identity and connection (changes nothing)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'hoopctl;policy;get' {
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--out-dir', '--out-dir', [CompletionResultType]::ParameterName, 'Write the policy''s files into DIR (created if missing) instead of printing it')
            [CompletionResult]::new('--broker', '--broker', [CompletionResultType]::ParameterName, 'Broker URL, e.g. https://hoop.example.com:8443 [default: $HOOP_BROKER, then config.toml]')
            [CompletionResult]::new('--ca-file', '--ca-file', [CompletionResultType]::ParameterName, 'PEM file with the CA certificate that signs the broker''s TLS certificate, when it is not in the system trust store [default: $HOOP_CA_FILE, then config.toml]')
            [CompletionResult]::new('--token-file', '--token-file', [CompletionResultType]::ParameterName, 'Read the bearer token from this file instead of the stored login (a CI job''s OIDC token, a Kubernetes projected token); re-read when the token in it expires')
            [CompletionResult]::new('--audience', '--audience', [CompletionResultType]::ParameterName, 'Audience to request when hoopctl fetches a GitHub Actions OIDC token [default: $HOOP_AUDIENCE, then "hoop"]')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'With --out-dir: overwrite files that already exist')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'hoopctl;policy;diff' {
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'Policy document: a TOML file, or a directory whose *.toml files (in name order) make it up')
            [CompletionResult]::new('--file', '--file', [CompletionResultType]::ParameterName, 'Policy document: a TOML file, or a directory whose *.toml files (in name order) make it up')
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
        'hoopctl;policy;apply' {
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'Policy document: a TOML file, or a directory whose *.toml files (in name order) make it up')
            [CompletionResult]::new('--file', '--file', [CompletionResultType]::ParameterName, 'Policy document: a TOML file, or a directory whose *.toml files (in name order) make it up')
            [CompletionResult]::new('--broker', '--broker', [CompletionResultType]::ParameterName, 'Broker URL, e.g. https://hoop.example.com:8443 [default: $HOOP_BROKER, then config.toml]')
            [CompletionResult]::new('--ca-file', '--ca-file', [CompletionResultType]::ParameterName, 'PEM file with the CA certificate that signs the broker''s TLS certificate, when it is not in the system trust store [default: $HOOP_CA_FILE, then config.toml]')
            [CompletionResult]::new('--token-file', '--token-file', [CompletionResultType]::ParameterName, 'Read the bearer token from this file instead of the stored login (a CI job''s OIDC token, a Kubernetes projected token); re-read when the token in it expires')
            [CompletionResult]::new('--audience', '--audience', [CompletionResultType]::ParameterName, 'Audience to request when hoopctl fetches a GitHub Actions OIDC token [default: $HOOP_AUDIENCE, then "hoop"]')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Apply without asking (required when not on a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Apply without asking (required when not on a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'hoopctl;policy;test' {
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'User name (with --workload: the service identity)')
            [CompletionResult]::new('-g', '-g', [CompletionResultType]::ParameterName, 'A group of the user (repeatable)')
            [CompletionResult]::new('--group', '--group', [CompletionResultType]::ParameterName, 'A group of the user (repeatable)')
            [CompletionResult]::new('--connection', '--connection', [CompletionResultType]::ParameterName, 'Connection name')
            [CompletionResult]::new('--sql', '--sql', [CompletionResultType]::ParameterName, 'A statement to judge as well (guardrails)')
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'Test this policy file (or directory of *.toml files) instead of the policy in force')
            [CompletionResult]::new('--file', '--file', [CompletionResultType]::ParameterName, 'Test this policy file (or directory of *.toml files) instead of the policy in force')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--broker', '--broker', [CompletionResultType]::ParameterName, 'Broker URL, e.g. https://hoop.example.com:8443 [default: $HOOP_BROKER, then config.toml]')
            [CompletionResult]::new('--ca-file', '--ca-file', [CompletionResultType]::ParameterName, 'PEM file with the CA certificate that signs the broker''s TLS certificate, when it is not in the system trust store [default: $HOOP_CA_FILE, then config.toml]')
            [CompletionResult]::new('--token-file', '--token-file', [CompletionResultType]::ParameterName, 'Read the bearer token from this file instead of the stored login (a CI job''s OIDC token, a Kubernetes projected token); re-read when the token in it expires')
            [CompletionResult]::new('--audience', '--audience', [CompletionResultType]::ParameterName, 'Audience to request when hoopctl fetches a GitHub Actions OIDC token [default: $HOOP_AUDIENCE, then "hoop"]')
            [CompletionResult]::new('--workload', '--workload', [CompletionResultType]::ParameterName, 'Test a workload identity (matched by `services` rules) instead of a person')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'hoopctl;policy;help' {
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Print the policy in force, or write its files into a directory')
            [CompletionResult]::new('diff', 'diff', [CompletionResultType]::ParameterValue, 'Validate a policy file or directory and show what applying it would change (changes nothing)')
            [CompletionResult]::new('apply', 'apply', [CompletionResultType]::ParameterValue, 'Make a policy file or directory the policy in force (policy admins only)')
            [CompletionResult]::new('test', 'test', [CompletionResultType]::ParameterValue, 'Show how the policy decides for an identity and connection (changes nothing)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'hoopctl;policy;help;get' {
            break
        }
        'hoopctl;policy;help;diff' {
            break
        }
        'hoopctl;policy;help;apply' {
            break
        }
        'hoopctl;policy;help;test' {
            break
        }
        'hoopctl;policy;help;help' {
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
        'hoopctl;audit' {
            [CompletionResult]::new('--broker', '--broker', [CompletionResultType]::ParameterName, 'Broker URL, e.g. https://hoop.example.com:8443 [default: $HOOP_BROKER, then config.toml]')
            [CompletionResult]::new('--ca-file', '--ca-file', [CompletionResultType]::ParameterName, 'PEM file with the CA certificate that signs the broker''s TLS certificate, when it is not in the system trust store [default: $HOOP_CA_FILE, then config.toml]')
            [CompletionResult]::new('--token-file', '--token-file', [CompletionResultType]::ParameterName, 'Read the bearer token from this file instead of the stored login (a CI job''s OIDC token, a Kubernetes projected token); re-read when the token in it expires')
            [CompletionResult]::new('--audience', '--audience', [CompletionResultType]::ParameterName, 'Audience to request when hoopctl fetches a GitHub Actions OIDC token [default: $HOOP_AUDIENCE, then "hoop"]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List audit records (the newest --limit, oldest first)')
            [CompletionResult]::new('ls', 'ls', [CompletionResultType]::ParameterValue, 'List audit records (the newest --limit, oldest first)')
            [CompletionResult]::new('export', 'export', [CompletionResultType]::ParameterValue, 'Write the whole log as JSON Lines: records with hashes, checkpoints, public keys')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Verify the hash chain and the signed checkpoints (an export file, or the broker''s log)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'hoopctl;audit;list' {
            [CompletionResult]::new('--since', '--since', [CompletionResultType]::ParameterName, 'Records since this time: RFC 3339 (2025-01-31T08:00:00Z) or a duration ago (2h, 7d)')
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'Records of this user')
            [CompletionResult]::new('--connection', '--connection', [CompletionResultType]::ParameterName, 'Records on this connection')
            [CompletionResult]::new('--kind', '--kind', [CompletionResultType]::ParameterName, 'Records of this kind, or of its sub-kinds (`statement` matches `statement.blocked`)')
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'At most this many records (the newest)')
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
        'hoopctl;audit;ls' {
            [CompletionResult]::new('--since', '--since', [CompletionResultType]::ParameterName, 'Records since this time: RFC 3339 (2025-01-31T08:00:00Z) or a duration ago (2h, 7d)')
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'Records of this user')
            [CompletionResult]::new('--connection', '--connection', [CompletionResultType]::ParameterName, 'Records on this connection')
            [CompletionResult]::new('--kind', '--kind', [CompletionResultType]::ParameterName, 'Records of this kind, or of its sub-kinds (`statement` matches `statement.blocked`)')
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'At most this many records (the newest)')
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
        'hoopctl;audit;export' {
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Write to this file instead of stdout')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Write to this file instead of stdout')
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
        'hoopctl;audit;verify' {
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'Verify this export file offline instead of fetching one from the broker')
            [CompletionResult]::new('--file', '--file', [CompletionResultType]::ParameterName, 'Verify this export file offline instead of fetching one from the broker')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'Accept checkpoints only from this key id (repeatable; see `hoopctl audit verify` output or GET /v1/audit/keys)')
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
        'hoopctl;audit;help' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List audit records (the newest --limit, oldest first)')
            [CompletionResult]::new('export', 'export', [CompletionResultType]::ParameterValue, 'Write the whole log as JSON Lines: records with hashes, checkpoints, public keys')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Verify the hash chain and the signed checkpoints (an export file, or the broker''s log)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'hoopctl;audit;help;list' {
            break
        }
        'hoopctl;audit;help;export' {
            break
        }
        'hoopctl;audit;help;verify' {
            break
        }
        'hoopctl;audit;help;help' {
            break
        }
        'hoopctl;sessions' {
            [CompletionResult]::new('--broker', '--broker', [CompletionResultType]::ParameterName, 'Broker URL, e.g. https://hoop.example.com:8443 [default: $HOOP_BROKER, then config.toml]')
            [CompletionResult]::new('--ca-file', '--ca-file', [CompletionResultType]::ParameterName, 'PEM file with the CA certificate that signs the broker''s TLS certificate, when it is not in the system trust store [default: $HOOP_CA_FILE, then config.toml]')
            [CompletionResult]::new('--token-file', '--token-file', [CompletionResultType]::ParameterName, 'Read the bearer token from this file instead of the stored login (a CI job''s OIDC token, a Kubernetes projected token); re-read when the token in it expires')
            [CompletionResult]::new('--audience', '--audience', [CompletionResultType]::ParameterName, 'Audience to request when hoopctl fetches a GitHub Actions OIDC token [default: $HOOP_AUDIENCE, then "hoop"]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List sessions, newest first (yours; everyone''s for admins and auditors)')
            [CompletionResult]::new('ls', 'ls', [CompletionResultType]::ParameterValue, 'List sessions, newest first (yours; everyone''s for admins and auditors)')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Show a session: who, where, when, and its statements or SSH commands')
            [CompletionResult]::new('replay', 'replay', [CompletionResultType]::ParameterValue, 'Play a session back: Postgres statements with their outcomes, or an SSH shell, at recorded speed')
            [CompletionResult]::new('export', 'export', [CompletionResultType]::ParameterValue, 'Write a session''s recording: JSON for Postgres, asciicast v2 for an SSH shell')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'hoopctl;sessions;list' {
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'Sessions of this user')
            [CompletionResult]::new('--connection', '--connection', [CompletionResultType]::ParameterName, 'Sessions on this connection')
            [CompletionResult]::new('--since', '--since', [CompletionResultType]::ParameterName, 'Sessions opened since this time: RFC 3339 (2025-01-31T08:00:00Z) or a duration ago (1h, 7d)')
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'At most this many sessions (the newest)')
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
        'hoopctl;sessions;ls' {
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'Sessions of this user')
            [CompletionResult]::new('--connection', '--connection', [CompletionResultType]::ParameterName, 'Sessions on this connection')
            [CompletionResult]::new('--since', '--since', [CompletionResultType]::ParameterName, 'Sessions opened since this time: RFC 3339 (2025-01-31T08:00:00Z) or a duration ago (1h, 7d)')
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'At most this many sessions (the newest)')
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
        'hoopctl;sessions;show' {
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
        'hoopctl;sessions;replay' {
            [CompletionResult]::new('--speed', '--speed', [CompletionResultType]::ParameterName, 'Playback speed factor (2 = twice as fast)')
            [CompletionResult]::new('--max-idle', '--max-idle', [CompletionResultType]::ParameterName, 'Cut pauses longer than this many seconds')
            [CompletionResult]::new('--part', '--part', [CompletionResultType]::ParameterName, 'SSH: which shell of the session (0 = the first)')
            [CompletionResult]::new('--broker', '--broker', [CompletionResultType]::ParameterName, 'Broker URL, e.g. https://hoop.example.com:8443 [default: $HOOP_BROKER, then config.toml]')
            [CompletionResult]::new('--ca-file', '--ca-file', [CompletionResultType]::ParameterName, 'PEM file with the CA certificate that signs the broker''s TLS certificate, when it is not in the system trust store [default: $HOOP_CA_FILE, then config.toml]')
            [CompletionResult]::new('--token-file', '--token-file', [CompletionResultType]::ParameterName, 'Read the bearer token from this file instead of the stored login (a CI job''s OIDC token, a Kubernetes projected token); re-read when the token in it expires')
            [CompletionResult]::new('--audience', '--audience', [CompletionResultType]::ParameterName, 'Audience to request when hoopctl fetches a GitHub Actions OIDC token [default: $HOOP_AUDIENCE, then "hoop"]')
            [CompletionResult]::new('--index', '--index', [CompletionResultType]::ParameterName, 'SSH: print the session''s recording index (shells, commands, transfers) as JSON instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'hoopctl;sessions;export' {
            [CompletionResult]::new('--out', '--out', [CompletionResultType]::ParameterName, 'Write to this file instead of stdout')
            [CompletionResult]::new('--part', '--part', [CompletionResultType]::ParameterName, 'SSH: which shell of the session (0 = the first)')
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
        'hoopctl;sessions;help' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List sessions, newest first (yours; everyone''s for admins and auditors)')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Show a session: who, where, when, and its statements or SSH commands')
            [CompletionResult]::new('replay', 'replay', [CompletionResultType]::ParameterValue, 'Play a session back: Postgres statements with their outcomes, or an SSH shell, at recorded speed')
            [CompletionResult]::new('export', 'export', [CompletionResultType]::ParameterValue, 'Write a session''s recording: JSON for Postgres, asciicast v2 for an SSH shell')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'hoopctl;sessions;help;list' {
            break
        }
        'hoopctl;sessions;help;show' {
            break
        }
        'hoopctl;sessions;help;replay' {
            break
        }
        'hoopctl;sessions;help;export' {
            break
        }
        'hoopctl;sessions;help;help' {
            break
        }
        'hoopctl;help' {
            [CompletionResult]::new('login', 'login', [CompletionResultType]::ParameterValue, 'Log in with your identity provider (OAuth device flow) and store the tokens')
            [CompletionResult]::new('logout', 'logout', [CompletionResultType]::ParameterValue, 'Forget the stored login (keyring entry and token file)')
            [CompletionResult]::new('whoami', 'whoami', [CompletionResultType]::ParameterValue, 'Show who the broker sees you as, and when your login expires')
            [CompletionResult]::new('connections', 'connections', [CompletionResultType]::ParameterValue, 'List the connections you may open')
            [CompletionResult]::new('connect', 'connect', [CompletionResultType]::ParameterValue, 'Open a session on a connection and tunnel local clients to it')
            [CompletionResult]::new('exec', 'exec', [CompletionResultType]::ParameterValue, 'Run SQL (or a client command) on a connection, for scripts and CI; never prompts')
            [CompletionResult]::new('requests', 'requests', [CompletionResultType]::ParameterValue, 'Your access requests: list, show, cancel, revoke')
            [CompletionResult]::new('approve', 'approve', [CompletionResultType]::ParameterValue, 'Requests waiting for your approval; approve one')
            [CompletionResult]::new('deny', 'deny', [CompletionResultType]::ParameterValue, 'Deny an access request waiting for your approval')
            [CompletionResult]::new('policy', 'policy', [CompletionResultType]::ParameterValue, 'Read, check, apply and test the access policy')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script')
            [CompletionResult]::new('audit', 'audit', [CompletionResultType]::ParameterValue, 'The tamper-evident audit log: list, export, verify (admins and auditors)')
            [CompletionResult]::new('sessions', 'sessions', [CompletionResultType]::ParameterValue, 'Recorded sessions: list, show, replay and export them')
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
        'hoopctl;help;requests' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'Your requests, newest first')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'One request: state, reason, approvers, decisions, grant')
            [CompletionResult]::new('cancel', 'cancel', [CompletionResultType]::ParameterValue, 'Withdraw a pending request of yours')
            [CompletionResult]::new('revoke', 'revoke', [CompletionResultType]::ParameterValue, 'End a request''s grant now (its approvers and policy admins); its live sessions end')
            break
        }
        'hoopctl;help;requests;list' {
            break
        }
        'hoopctl;help;requests;show' {
            break
        }
        'hoopctl;help;requests;cancel' {
            break
        }
        'hoopctl;help;requests;revoke' {
            break
        }
        'hoopctl;help;approve' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'Pending requests you may decide (never your own)')
            break
        }
        'hoopctl;help;approve;list' {
            break
        }
        'hoopctl;help;deny' {
            break
        }
        'hoopctl;help;policy' {
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Print the policy in force, or write its files into a directory')
            [CompletionResult]::new('diff', 'diff', [CompletionResultType]::ParameterValue, 'Validate a policy file or directory and show what applying it would change (changes nothing)')
            [CompletionResult]::new('apply', 'apply', [CompletionResultType]::ParameterValue, 'Make a policy file or directory the policy in force (policy admins only)')
            [CompletionResult]::new('test', 'test', [CompletionResultType]::ParameterValue, 'Show how the policy decides for an identity and connection (changes nothing)')
            break
        }
        'hoopctl;help;policy;get' {
            break
        }
        'hoopctl;help;policy;diff' {
            break
        }
        'hoopctl;help;policy;apply' {
            break
        }
        'hoopctl;help;policy;test' {
            break
        }
        'hoopctl;help;completions' {
            break
        }
        'hoopctl;help;audit' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List audit records (the newest --limit, oldest first)')
            [CompletionResult]::new('export', 'export', [CompletionResultType]::ParameterValue, 'Write the whole log as JSON Lines: records with hashes, checkpoints, public keys')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Verify the hash chain and the signed checkpoints (an export file, or the broker''s log)')
            break
        }
        'hoopctl;help;audit;list' {
            break
        }
        'hoopctl;help;audit;export' {
            break
        }
        'hoopctl;help;audit;verify' {
            break
        }
        'hoopctl;help;sessions' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List sessions, newest first (yours; everyone''s for admins and auditors)')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Show a session: who, where, when, and its statements or SSH commands')
            [CompletionResult]::new('replay', 'replay', [CompletionResultType]::ParameterValue, 'Play a session back: Postgres statements with their outcomes, or an SSH shell, at recorded speed')
            [CompletionResult]::new('export', 'export', [CompletionResultType]::ParameterValue, 'Write a session''s recording: JSON for Postgres, asciicast v2 for an SSH shell')
            break
        }
        'hoopctl;help;sessions;list' {
            break
        }
        'hoopctl;help;sessions;show' {
            break
        }
        'hoopctl;help;sessions;replay' {
            break
        }
        'hoopctl;help;sessions;export' {
            break
        }
        'hoopctl;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
