# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_hoopctl_global_optspecs
    string join \n broker= ca-file= token-file= audience= h/help V/version
end

function __fish_hoopctl_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_hoopctl_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_hoopctl_using_subcommand
    set -l cmd (__fish_hoopctl_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c hoopctl -n "__fish_hoopctl_needs_command" -l broker -d 'Broker URL, e.g. https://hoop.example.com:8443 [default: $HOOP_BROKER, then config.toml]' -r
complete -c hoopctl -n "__fish_hoopctl_needs_command" -l ca-file -d 'PEM file with the CA certificate that signs the broker\'s TLS certificate, when it is not in the system trust store [default: $HOOP_CA_FILE, then config.toml]' -r -F
complete -c hoopctl -n "__fish_hoopctl_needs_command" -l token-file -d 'Read the bearer token from this file instead of the stored login (a CI job\'s OIDC token, a Kubernetes projected token); re-read when the token in it expires' -r -F
complete -c hoopctl -n "__fish_hoopctl_needs_command" -l audience -d 'Audience to request when hoopctl fetches a GitHub Actions OIDC token [default: $HOOP_AUDIENCE, then "hoop"]' -r
complete -c hoopctl -n "__fish_hoopctl_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopctl -n "__fish_hoopctl_needs_command" -s V -l version -d 'Print version'
complete -c hoopctl -n "__fish_hoopctl_needs_command" -f -a "login" -d 'Log in with your identity provider (OAuth device flow) and store the tokens'
complete -c hoopctl -n "__fish_hoopctl_needs_command" -f -a "logout" -d 'Forget the stored login (keyring entry and token file)'
complete -c hoopctl -n "__fish_hoopctl_needs_command" -f -a "whoami" -d 'Show who the broker sees you as, and when your login expires'
complete -c hoopctl -n "__fish_hoopctl_needs_command" -f -a "connections" -d 'List the connections you may open'
complete -c hoopctl -n "__fish_hoopctl_needs_command" -f -a "ls" -d 'List the connections you may open'
complete -c hoopctl -n "__fish_hoopctl_needs_command" -f -a "connect" -d 'Open a session on a connection and tunnel local clients to it'
complete -c hoopctl -n "__fish_hoopctl_needs_command" -f -a "exec" -d 'Run SQL (or a client command) on a connection, for scripts and CI; never prompts'
complete -c hoopctl -n "__fish_hoopctl_needs_command" -f -a "requests" -d 'Your access requests: list, show, cancel, revoke'
complete -c hoopctl -n "__fish_hoopctl_needs_command" -f -a "approve" -d 'Requests waiting for your approval; approve one'
complete -c hoopctl -n "__fish_hoopctl_needs_command" -f -a "deny" -d 'Deny an access request waiting for your approval'
complete -c hoopctl -n "__fish_hoopctl_needs_command" -f -a "policy" -d 'Read, check, apply and test the access policy'
complete -c hoopctl -n "__fish_hoopctl_needs_command" -f -a "completions" -d 'Print a shell completion script'
complete -c hoopctl -n "__fish_hoopctl_needs_command" -f -a "audit" -d 'The tamper-evident audit log: list, export, verify (admins and auditors)'
complete -c hoopctl -n "__fish_hoopctl_needs_command" -f -a "sessions" -d 'Recorded sessions: list, show, replay and export them'
complete -c hoopctl -n "__fish_hoopctl_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand login" -l broker -d 'Broker URL, e.g. https://hoop.example.com:8443 [default: $HOOP_BROKER, then config.toml]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand login" -l ca-file -d 'PEM file with the CA certificate that signs the broker\'s TLS certificate, when it is not in the system trust store [default: $HOOP_CA_FILE, then config.toml]' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand login" -l token-file -d 'Read the bearer token from this file instead of the stored login (a CI job\'s OIDC token, a Kubernetes projected token); re-read when the token in it expires' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand login" -l audience -d 'Audience to request when hoopctl fetches a GitHub Actions OIDC token [default: $HOOP_AUDIENCE, then "hoop"]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand login" -l no-browser -d 'Do not try to open a browser; only print the URL and the code'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand login" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand login" -s V -l version -d 'Print version'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand logout" -l broker -d 'Broker URL, e.g. https://hoop.example.com:8443 [default: $HOOP_BROKER, then config.toml]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand logout" -l ca-file -d 'PEM file with the CA certificate that signs the broker\'s TLS certificate, when it is not in the system trust store [default: $HOOP_CA_FILE, then config.toml]' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand logout" -l token-file -d 'Read the bearer token from this file instead of the stored login (a CI job\'s OIDC token, a Kubernetes projected token); re-read when the token in it expires' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand logout" -l audience -d 'Audience to request when hoopctl fetches a GitHub Actions OIDC token [default: $HOOP_AUDIENCE, then "hoop"]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand logout" -s h -l help -d 'Print help'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand logout" -s V -l version -d 'Print version'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand whoami" -l broker -d 'Broker URL, e.g. https://hoop.example.com:8443 [default: $HOOP_BROKER, then config.toml]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand whoami" -l ca-file -d 'PEM file with the CA certificate that signs the broker\'s TLS certificate, when it is not in the system trust store [default: $HOOP_CA_FILE, then config.toml]' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand whoami" -l token-file -d 'Read the bearer token from this file instead of the stored login (a CI job\'s OIDC token, a Kubernetes projected token); re-read when the token in it expires' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand whoami" -l audience -d 'Audience to request when hoopctl fetches a GitHub Actions OIDC token [default: $HOOP_AUDIENCE, then "hoop"]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand whoami" -s v -l verbose -d 'Also show the broker URL, the issuer and where the login is stored'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand whoami" -s h -l help -d 'Print help'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand whoami" -s V -l version -d 'Print version'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand connections" -s o -l output -d 'Output format' -r -f -a "table\t'Aligned columns for people'
json\t'The broker\'s JSON, for scripts'"
complete -c hoopctl -n "__fish_hoopctl_using_subcommand connections" -l broker -d 'Broker URL, e.g. https://hoop.example.com:8443 [default: $HOOP_BROKER, then config.toml]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand connections" -l ca-file -d 'PEM file with the CA certificate that signs the broker\'s TLS certificate, when it is not in the system trust store [default: $HOOP_CA_FILE, then config.toml]' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand connections" -l token-file -d 'Read the bearer token from this file instead of the stored login (a CI job\'s OIDC token, a Kubernetes projected token); re-read when the token in it expires' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand connections" -l audience -d 'Audience to request when hoopctl fetches a GitHub Actions OIDC token [default: $HOOP_AUDIENCE, then "hoop"]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand connections" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand connections" -s V -l version -d 'Print version'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand ls" -s o -l output -d 'Output format' -r -f -a "table\t'Aligned columns for people'
json\t'The broker\'s JSON, for scripts'"
complete -c hoopctl -n "__fish_hoopctl_using_subcommand ls" -l broker -d 'Broker URL, e.g. https://hoop.example.com:8443 [default: $HOOP_BROKER, then config.toml]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand ls" -l ca-file -d 'PEM file with the CA certificate that signs the broker\'s TLS certificate, when it is not in the system trust store [default: $HOOP_CA_FILE, then config.toml]' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand ls" -l token-file -d 'Read the bearer token from this file instead of the stored login (a CI job\'s OIDC token, a Kubernetes projected token); re-read when the token in it expires' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand ls" -l audience -d 'Audience to request when hoopctl fetches a GitHub Actions OIDC token [default: $HOOP_AUDIENCE, then "hoop"]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand ls" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand ls" -s V -l version -d 'Print version'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand connect" -s p -l port -d 'Local port to listen on (127.0.0.1); 0 picks a free port' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand connect" -s r -l reason -d 'Why you need access; recorded with the session and shown to approvers' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand connect" -l duration -d 'How long a grant to ask for when the connection needs an approval, e.g. 30m [default: the policy\'s; capped by its maximum]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand connect" -l request -d 'Use this access request (e.g. one made with --no-wait): wait for it if it is still pending, then open the session under its grant' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand connect" -l max-local-connections -d 'Most local connections relayed at once through this tunnel; one more is refused with an error. Each local connection must present the tunnel\'s one-time secret (or, for ssh, start its handshake) within 5 s, before the broker is contacted; see docs/tunnel.md' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand connect" -l broker -d 'Broker URL, e.g. https://hoop.example.com:8443 [default: $HOOP_BROKER, then config.toml]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand connect" -l ca-file -d 'PEM file with the CA certificate that signs the broker\'s TLS certificate, when it is not in the system trust store [default: $HOOP_CA_FILE, then config.toml]' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand connect" -l token-file -d 'Read the bearer token from this file instead of the stored login (a CI job\'s OIDC token, a Kubernetes projected token); re-read when the token in it expires' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand connect" -l audience -d 'Audience to request when hoopctl fetches a GitHub Actions OIDC token [default: $HOOP_AUDIENCE, then "hoop"]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand connect" -l no-wait -d 'When the connection needs an approval, ask for it, print the request id and exit with status 3 instead of waiting'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand connect" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand connect" -s V -l version -d 'Print version'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand exec" -s r -l reason -d 'Why you need access; recorded with the session' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand exec" -s c -l sql -d 'SQL to run (repeatable; each is one query, run in order)' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand exec" -s f -l file -d 'File with SQL to run (`-` reads stdin)' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand exec" -s o -l output -d 'Output format for results' -r -f -a "table\t'Aligned columns for people'
json\t'The broker\'s JSON, for scripts'"
complete -c hoopctl -n "__fish_hoopctl_using_subcommand exec" -l wait -d 'How long to wait for an approval when the connection requires one, or for the review of a statement a guardrail holds (then it runs), e.g. 10m; alone: up to 24h [default: do not wait: exit with status 3 and the request id]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand exec" -l duration -d 'How long a grant to ask for when the connection needs an approval, e.g. 30m [default: the policy\'s; capped by its maximum]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand exec" -l request -d 'Use this access request (e.g. the id an earlier exec printed with status 3)' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand exec" -l max-local-connections -d 'With a command: most local connections relayed at once (see `hoopctl connect --help`)' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand exec" -l broker -d 'Broker URL, e.g. https://hoop.example.com:8443 [default: $HOOP_BROKER, then config.toml]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand exec" -l ca-file -d 'PEM file with the CA certificate that signs the broker\'s TLS certificate, when it is not in the system trust store [default: $HOOP_CA_FILE, then config.toml]' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand exec" -l token-file -d 'Read the bearer token from this file instead of the stored login (a CI job\'s OIDC token, a Kubernetes projected token); re-read when the token in it expires' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand exec" -l audience -d 'Audience to request when hoopctl fetches a GitHub Actions OIDC token [default: $HOOP_AUDIENCE, then "hoop"]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand exec" -l no-wait -d 'Do not wait for an approval (the default; says so explicitly in scripts)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand exec" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand exec" -s V -l version -d 'Print version'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand requests; and not __fish_seen_subcommand_from list ls show cancel revoke help" -s o -l output -d 'Output format of the list' -r -f -a "table\t'Aligned columns for people'
json\t'The broker\'s JSON, for scripts'"
complete -c hoopctl -n "__fish_hoopctl_using_subcommand requests; and not __fish_seen_subcommand_from list ls show cancel revoke help" -l broker -d 'Broker URL, e.g. https://hoop.example.com:8443 [default: $HOOP_BROKER, then config.toml]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand requests; and not __fish_seen_subcommand_from list ls show cancel revoke help" -l ca-file -d 'PEM file with the CA certificate that signs the broker\'s TLS certificate, when it is not in the system trust store [default: $HOOP_CA_FILE, then config.toml]' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand requests; and not __fish_seen_subcommand_from list ls show cancel revoke help" -l token-file -d 'Read the bearer token from this file instead of the stored login (a CI job\'s OIDC token, a Kubernetes projected token); re-read when the token in it expires' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand requests; and not __fish_seen_subcommand_from list ls show cancel revoke help" -l audience -d 'Audience to request when hoopctl fetches a GitHub Actions OIDC token [default: $HOOP_AUDIENCE, then "hoop"]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand requests; and not __fish_seen_subcommand_from list ls show cancel revoke help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand requests; and not __fish_seen_subcommand_from list ls show cancel revoke help" -s V -l version -d 'Print version'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand requests; and not __fish_seen_subcommand_from list ls show cancel revoke help" -f -a "list" -d 'Your requests, newest first'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand requests; and not __fish_seen_subcommand_from list ls show cancel revoke help" -f -a "ls" -d 'Your requests, newest first'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand requests; and not __fish_seen_subcommand_from list ls show cancel revoke help" -f -a "show" -d 'One request: state, reason, approvers, decisions, grant'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand requests; and not __fish_seen_subcommand_from list ls show cancel revoke help" -f -a "cancel" -d 'Withdraw a pending request of yours'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand requests; and not __fish_seen_subcommand_from list ls show cancel revoke help" -f -a "revoke" -d 'End a request\'s grant now (its approvers and policy admins); its live sessions end'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand requests; and not __fish_seen_subcommand_from list ls show cancel revoke help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand requests; and __fish_seen_subcommand_from list" -s o -l output -d 'Output format' -r -f -a "table\t'Aligned columns for people'
json\t'The broker\'s JSON, for scripts'"
complete -c hoopctl -n "__fish_hoopctl_using_subcommand requests; and __fish_seen_subcommand_from list" -l broker -d 'Broker URL, e.g. https://hoop.example.com:8443 [default: $HOOP_BROKER, then config.toml]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand requests; and __fish_seen_subcommand_from list" -l ca-file -d 'PEM file with the CA certificate that signs the broker\'s TLS certificate, when it is not in the system trust store [default: $HOOP_CA_FILE, then config.toml]' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand requests; and __fish_seen_subcommand_from list" -l token-file -d 'Read the bearer token from this file instead of the stored login (a CI job\'s OIDC token, a Kubernetes projected token); re-read when the token in it expires' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand requests; and __fish_seen_subcommand_from list" -l audience -d 'Audience to request when hoopctl fetches a GitHub Actions OIDC token [default: $HOOP_AUDIENCE, then "hoop"]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand requests; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand requests; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand requests; and __fish_seen_subcommand_from ls" -s o -l output -d 'Output format' -r -f -a "table\t'Aligned columns for people'
json\t'The broker\'s JSON, for scripts'"
complete -c hoopctl -n "__fish_hoopctl_using_subcommand requests; and __fish_seen_subcommand_from ls" -l broker -d 'Broker URL, e.g. https://hoop.example.com:8443 [default: $HOOP_BROKER, then config.toml]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand requests; and __fish_seen_subcommand_from ls" -l ca-file -d 'PEM file with the CA certificate that signs the broker\'s TLS certificate, when it is not in the system trust store [default: $HOOP_CA_FILE, then config.toml]' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand requests; and __fish_seen_subcommand_from ls" -l token-file -d 'Read the bearer token from this file instead of the stored login (a CI job\'s OIDC token, a Kubernetes projected token); re-read when the token in it expires' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand requests; and __fish_seen_subcommand_from ls" -l audience -d 'Audience to request when hoopctl fetches a GitHub Actions OIDC token [default: $HOOP_AUDIENCE, then "hoop"]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand requests; and __fish_seen_subcommand_from ls" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand requests; and __fish_seen_subcommand_from ls" -s V -l version -d 'Print version'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand requests; and __fish_seen_subcommand_from show" -s o -l output -d 'Output format' -r -f -a "table\t'Aligned columns for people'
json\t'The broker\'s JSON, for scripts'"
complete -c hoopctl -n "__fish_hoopctl_using_subcommand requests; and __fish_seen_subcommand_from show" -l broker -d 'Broker URL, e.g. https://hoop.example.com:8443 [default: $HOOP_BROKER, then config.toml]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand requests; and __fish_seen_subcommand_from show" -l ca-file -d 'PEM file with the CA certificate that signs the broker\'s TLS certificate, when it is not in the system trust store [default: $HOOP_CA_FILE, then config.toml]' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand requests; and __fish_seen_subcommand_from show" -l token-file -d 'Read the bearer token from this file instead of the stored login (a CI job\'s OIDC token, a Kubernetes projected token); re-read when the token in it expires' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand requests; and __fish_seen_subcommand_from show" -l audience -d 'Audience to request when hoopctl fetches a GitHub Actions OIDC token [default: $HOOP_AUDIENCE, then "hoop"]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand requests; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand requests; and __fish_seen_subcommand_from show" -s V -l version -d 'Print version'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand requests; and __fish_seen_subcommand_from cancel" -l broker -d 'Broker URL, e.g. https://hoop.example.com:8443 [default: $HOOP_BROKER, then config.toml]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand requests; and __fish_seen_subcommand_from cancel" -l ca-file -d 'PEM file with the CA certificate that signs the broker\'s TLS certificate, when it is not in the system trust store [default: $HOOP_CA_FILE, then config.toml]' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand requests; and __fish_seen_subcommand_from cancel" -l token-file -d 'Read the bearer token from this file instead of the stored login (a CI job\'s OIDC token, a Kubernetes projected token); re-read when the token in it expires' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand requests; and __fish_seen_subcommand_from cancel" -l audience -d 'Audience to request when hoopctl fetches a GitHub Actions OIDC token [default: $HOOP_AUDIENCE, then "hoop"]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand requests; and __fish_seen_subcommand_from cancel" -s h -l help -d 'Print help'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand requests; and __fish_seen_subcommand_from cancel" -s V -l version -d 'Print version'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand requests; and __fish_seen_subcommand_from revoke" -s r -l reason -d 'Why; recorded and shown to the requester' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand requests; and __fish_seen_subcommand_from revoke" -l broker -d 'Broker URL, e.g. https://hoop.example.com:8443 [default: $HOOP_BROKER, then config.toml]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand requests; and __fish_seen_subcommand_from revoke" -l ca-file -d 'PEM file with the CA certificate that signs the broker\'s TLS certificate, when it is not in the system trust store [default: $HOOP_CA_FILE, then config.toml]' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand requests; and __fish_seen_subcommand_from revoke" -l token-file -d 'Read the bearer token from this file instead of the stored login (a CI job\'s OIDC token, a Kubernetes projected token); re-read when the token in it expires' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand requests; and __fish_seen_subcommand_from revoke" -l audience -d 'Audience to request when hoopctl fetches a GitHub Actions OIDC token [default: $HOOP_AUDIENCE, then "hoop"]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand requests; and __fish_seen_subcommand_from revoke" -s h -l help -d 'Print help'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand requests; and __fish_seen_subcommand_from revoke" -s V -l version -d 'Print version'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand requests; and __fish_seen_subcommand_from help" -f -a "list" -d 'Your requests, newest first'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand requests; and __fish_seen_subcommand_from help" -f -a "show" -d 'One request: state, reason, approvers, decisions, grant'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand requests; and __fish_seen_subcommand_from help" -f -a "cancel" -d 'Withdraw a pending request of yours'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand requests; and __fish_seen_subcommand_from help" -f -a "revoke" -d 'End a request\'s grant now (its approvers and policy admins); its live sessions end'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand requests; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand approve; and not __fish_seen_subcommand_from list ls help" -s m -l comment -d 'Comment, recorded with your approval and shown to the requester' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand approve; and not __fish_seen_subcommand_from list ls help" -l broker -d 'Broker URL, e.g. https://hoop.example.com:8443 [default: $HOOP_BROKER, then config.toml]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand approve; and not __fish_seen_subcommand_from list ls help" -l ca-file -d 'PEM file with the CA certificate that signs the broker\'s TLS certificate, when it is not in the system trust store [default: $HOOP_CA_FILE, then config.toml]' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand approve; and not __fish_seen_subcommand_from list ls help" -l token-file -d 'Read the bearer token from this file instead of the stored login (a CI job\'s OIDC token, a Kubernetes projected token); re-read when the token in it expires' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand approve; and not __fish_seen_subcommand_from list ls help" -l audience -d 'Audience to request when hoopctl fetches a GitHub Actions OIDC token [default: $HOOP_AUDIENCE, then "hoop"]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand approve; and not __fish_seen_subcommand_from list ls help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand approve; and not __fish_seen_subcommand_from list ls help" -s V -l version -d 'Print version'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand approve; and not __fish_seen_subcommand_from list ls help" -a "list" -d 'Pending requests you may decide (never your own)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand approve; and not __fish_seen_subcommand_from list ls help" -a "ls" -d 'Pending requests you may decide (never your own)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand approve; and not __fish_seen_subcommand_from list ls help" -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand approve; and __fish_seen_subcommand_from list" -s o -l output -d 'Output format' -r -f -a "table\t'Aligned columns for people'
json\t'The broker\'s JSON, for scripts'"
complete -c hoopctl -n "__fish_hoopctl_using_subcommand approve; and __fish_seen_subcommand_from list" -l broker -d 'Broker URL, e.g. https://hoop.example.com:8443 [default: $HOOP_BROKER, then config.toml]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand approve; and __fish_seen_subcommand_from list" -l ca-file -d 'PEM file with the CA certificate that signs the broker\'s TLS certificate, when it is not in the system trust store [default: $HOOP_CA_FILE, then config.toml]' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand approve; and __fish_seen_subcommand_from list" -l token-file -d 'Read the bearer token from this file instead of the stored login (a CI job\'s OIDC token, a Kubernetes projected token); re-read when the token in it expires' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand approve; and __fish_seen_subcommand_from list" -l audience -d 'Audience to request when hoopctl fetches a GitHub Actions OIDC token [default: $HOOP_AUDIENCE, then "hoop"]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand approve; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand approve; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand approve; and __fish_seen_subcommand_from ls" -s o -l output -d 'Output format' -r -f -a "table\t'Aligned columns for people'
json\t'The broker\'s JSON, for scripts'"
complete -c hoopctl -n "__fish_hoopctl_using_subcommand approve; and __fish_seen_subcommand_from ls" -l broker -d 'Broker URL, e.g. https://hoop.example.com:8443 [default: $HOOP_BROKER, then config.toml]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand approve; and __fish_seen_subcommand_from ls" -l ca-file -d 'PEM file with the CA certificate that signs the broker\'s TLS certificate, when it is not in the system trust store [default: $HOOP_CA_FILE, then config.toml]' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand approve; and __fish_seen_subcommand_from ls" -l token-file -d 'Read the bearer token from this file instead of the stored login (a CI job\'s OIDC token, a Kubernetes projected token); re-read when the token in it expires' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand approve; and __fish_seen_subcommand_from ls" -l audience -d 'Audience to request when hoopctl fetches a GitHub Actions OIDC token [default: $HOOP_AUDIENCE, then "hoop"]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand approve; and __fish_seen_subcommand_from ls" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand approve; and __fish_seen_subcommand_from ls" -s V -l version -d 'Print version'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand approve; and __fish_seen_subcommand_from help" -f -a "list" -d 'Pending requests you may decide (never your own)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand approve; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand deny" -s r -l reason -d 'Why; shown to the requester (required)' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand deny" -l broker -d 'Broker URL, e.g. https://hoop.example.com:8443 [default: $HOOP_BROKER, then config.toml]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand deny" -l ca-file -d 'PEM file with the CA certificate that signs the broker\'s TLS certificate, when it is not in the system trust store [default: $HOOP_CA_FILE, then config.toml]' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand deny" -l token-file -d 'Read the bearer token from this file instead of the stored login (a CI job\'s OIDC token, a Kubernetes projected token); re-read when the token in it expires' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand deny" -l audience -d 'Audience to request when hoopctl fetches a GitHub Actions OIDC token [default: $HOOP_AUDIENCE, then "hoop"]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand deny" -s h -l help -d 'Print help'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand deny" -s V -l version -d 'Print version'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and not __fish_seen_subcommand_from get diff apply test help" -l broker -d 'Broker URL, e.g. https://hoop.example.com:8443 [default: $HOOP_BROKER, then config.toml]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and not __fish_seen_subcommand_from get diff apply test help" -l ca-file -d 'PEM file with the CA certificate that signs the broker\'s TLS certificate, when it is not in the system trust store [default: $HOOP_CA_FILE, then config.toml]' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and not __fish_seen_subcommand_from get diff apply test help" -l token-file -d 'Read the bearer token from this file instead of the stored login (a CI job\'s OIDC token, a Kubernetes projected token); re-read when the token in it expires' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and not __fish_seen_subcommand_from get diff apply test help" -l audience -d 'Audience to request when hoopctl fetches a GitHub Actions OIDC token [default: $HOOP_AUDIENCE, then "hoop"]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and not __fish_seen_subcommand_from get diff apply test help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and not __fish_seen_subcommand_from get diff apply test help" -s V -l version -d 'Print version'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and not __fish_seen_subcommand_from get diff apply test help" -f -a "get" -d 'Print the policy in force, or write its files into a directory'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and not __fish_seen_subcommand_from get diff apply test help" -f -a "diff" -d 'Validate a policy file or directory and show what applying it would change (changes nothing)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and not __fish_seen_subcommand_from get diff apply test help" -f -a "apply" -d 'Make a policy file or directory the policy in force (policy admins only)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and not __fish_seen_subcommand_from get diff apply test help" -f -a "test" -d 'Show how the policy decides for an identity and connection (changes nothing)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and not __fish_seen_subcommand_from get diff apply test help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and __fish_seen_subcommand_from get" -s o -l output -d 'Output format' -r -f -a "toml\t'The document as applied'
json\t'Version, author, time, document and the validated policy, as JSON'"
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and __fish_seen_subcommand_from get" -l out-dir -d 'Write the policy\'s files into DIR (created if missing) instead of printing it' -r -f -a "(__fish_complete_directories)"
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and __fish_seen_subcommand_from get" -l broker -d 'Broker URL, e.g. https://hoop.example.com:8443 [default: $HOOP_BROKER, then config.toml]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and __fish_seen_subcommand_from get" -l ca-file -d 'PEM file with the CA certificate that signs the broker\'s TLS certificate, when it is not in the system trust store [default: $HOOP_CA_FILE, then config.toml]' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and __fish_seen_subcommand_from get" -l token-file -d 'Read the bearer token from this file instead of the stored login (a CI job\'s OIDC token, a Kubernetes projected token); re-read when the token in it expires' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and __fish_seen_subcommand_from get" -l audience -d 'Audience to request when hoopctl fetches a GitHub Actions OIDC token [default: $HOOP_AUDIENCE, then "hoop"]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and __fish_seen_subcommand_from get" -l force -d 'With --out-dir: overwrite files that already exist'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and __fish_seen_subcommand_from get" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and __fish_seen_subcommand_from get" -s V -l version -d 'Print version'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and __fish_seen_subcommand_from diff" -s f -l file -d 'Policy document: a TOML file, or a directory whose *.toml files (in name order) make it up' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and __fish_seen_subcommand_from diff" -l broker -d 'Broker URL, e.g. https://hoop.example.com:8443 [default: $HOOP_BROKER, then config.toml]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and __fish_seen_subcommand_from diff" -l ca-file -d 'PEM file with the CA certificate that signs the broker\'s TLS certificate, when it is not in the system trust store [default: $HOOP_CA_FILE, then config.toml]' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and __fish_seen_subcommand_from diff" -l token-file -d 'Read the bearer token from this file instead of the stored login (a CI job\'s OIDC token, a Kubernetes projected token); re-read when the token in it expires' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and __fish_seen_subcommand_from diff" -l audience -d 'Audience to request when hoopctl fetches a GitHub Actions OIDC token [default: $HOOP_AUDIENCE, then "hoop"]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and __fish_seen_subcommand_from diff" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and __fish_seen_subcommand_from diff" -s V -l version -d 'Print version'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and __fish_seen_subcommand_from apply" -s f -l file -d 'Policy document: a TOML file, or a directory whose *.toml files (in name order) make it up' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and __fish_seen_subcommand_from apply" -l broker -d 'Broker URL, e.g. https://hoop.example.com:8443 [default: $HOOP_BROKER, then config.toml]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and __fish_seen_subcommand_from apply" -l ca-file -d 'PEM file with the CA certificate that signs the broker\'s TLS certificate, when it is not in the system trust store [default: $HOOP_CA_FILE, then config.toml]' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and __fish_seen_subcommand_from apply" -l token-file -d 'Read the bearer token from this file instead of the stored login (a CI job\'s OIDC token, a Kubernetes projected token); re-read when the token in it expires' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and __fish_seen_subcommand_from apply" -l audience -d 'Audience to request when hoopctl fetches a GitHub Actions OIDC token [default: $HOOP_AUDIENCE, then "hoop"]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and __fish_seen_subcommand_from apply" -s y -l yes -d 'Apply without asking (required when not on a terminal)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and __fish_seen_subcommand_from apply" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and __fish_seen_subcommand_from apply" -s V -l version -d 'Print version'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and __fish_seen_subcommand_from test" -l user -d 'User name (with --workload: the service identity)' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and __fish_seen_subcommand_from test" -s g -l group -d 'A group of the user (repeatable)' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and __fish_seen_subcommand_from test" -l connection -d 'Connection name' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and __fish_seen_subcommand_from test" -l sql -d 'A statement to judge as well (guardrails)' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and __fish_seen_subcommand_from test" -s f -l file -d 'Test this policy file (or directory of *.toml files) instead of the policy in force' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and __fish_seen_subcommand_from test" -s o -l output -d 'Output format' -r -f -a "table\t'Aligned columns for people'
json\t'The broker\'s JSON, for scripts'"
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and __fish_seen_subcommand_from test" -l broker -d 'Broker URL, e.g. https://hoop.example.com:8443 [default: $HOOP_BROKER, then config.toml]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and __fish_seen_subcommand_from test" -l ca-file -d 'PEM file with the CA certificate that signs the broker\'s TLS certificate, when it is not in the system trust store [default: $HOOP_CA_FILE, then config.toml]' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and __fish_seen_subcommand_from test" -l token-file -d 'Read the bearer token from this file instead of the stored login (a CI job\'s OIDC token, a Kubernetes projected token); re-read when the token in it expires' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and __fish_seen_subcommand_from test" -l audience -d 'Audience to request when hoopctl fetches a GitHub Actions OIDC token [default: $HOOP_AUDIENCE, then "hoop"]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and __fish_seen_subcommand_from test" -l workload -d 'Test a workload identity (matched by `services` rules) instead of a person'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and __fish_seen_subcommand_from test" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and __fish_seen_subcommand_from test" -s V -l version -d 'Print version'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and __fish_seen_subcommand_from help" -f -a "get" -d 'Print the policy in force, or write its files into a directory'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and __fish_seen_subcommand_from help" -f -a "diff" -d 'Validate a policy file or directory and show what applying it would change (changes nothing)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and __fish_seen_subcommand_from help" -f -a "apply" -d 'Make a policy file or directory the policy in force (policy admins only)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and __fish_seen_subcommand_from help" -f -a "test" -d 'Show how the policy decides for an identity and connection (changes nothing)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand completions" -l broker -d 'Broker URL, e.g. https://hoop.example.com:8443 [default: $HOOP_BROKER, then config.toml]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand completions" -l ca-file -d 'PEM file with the CA certificate that signs the broker\'s TLS certificate, when it is not in the system trust store [default: $HOOP_CA_FILE, then config.toml]' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand completions" -l token-file -d 'Read the bearer token from this file instead of the stored login (a CI job\'s OIDC token, a Kubernetes projected token); re-read when the token in it expires' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand completions" -l audience -d 'Audience to request when hoopctl fetches a GitHub Actions OIDC token [default: $HOOP_AUDIENCE, then "hoop"]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand completions" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand completions" -s V -l version -d 'Print version'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand audit; and not __fish_seen_subcommand_from list ls export verify help" -l broker -d 'Broker URL, e.g. https://hoop.example.com:8443 [default: $HOOP_BROKER, then config.toml]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand audit; and not __fish_seen_subcommand_from list ls export verify help" -l ca-file -d 'PEM file with the CA certificate that signs the broker\'s TLS certificate, when it is not in the system trust store [default: $HOOP_CA_FILE, then config.toml]' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand audit; and not __fish_seen_subcommand_from list ls export verify help" -l token-file -d 'Read the bearer token from this file instead of the stored login (a CI job\'s OIDC token, a Kubernetes projected token); re-read when the token in it expires' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand audit; and not __fish_seen_subcommand_from list ls export verify help" -l audience -d 'Audience to request when hoopctl fetches a GitHub Actions OIDC token [default: $HOOP_AUDIENCE, then "hoop"]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand audit; and not __fish_seen_subcommand_from list ls export verify help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand audit; and not __fish_seen_subcommand_from list ls export verify help" -s V -l version -d 'Print version'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand audit; and not __fish_seen_subcommand_from list ls export verify help" -f -a "list" -d 'List audit records (the newest --limit, oldest first)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand audit; and not __fish_seen_subcommand_from list ls export verify help" -f -a "ls" -d 'List audit records (the newest --limit, oldest first)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand audit; and not __fish_seen_subcommand_from list ls export verify help" -f -a "export" -d 'Write the whole log as JSON Lines: records with hashes, checkpoints, public keys'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand audit; and not __fish_seen_subcommand_from list ls export verify help" -f -a "verify" -d 'Verify the hash chain and the signed checkpoints (an export file, or the broker\'s log)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand audit; and not __fish_seen_subcommand_from list ls export verify help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand audit; and __fish_seen_subcommand_from list" -l since -d 'Records since this time: RFC 3339 (2025-01-31T08:00:00Z) or a duration ago (2h, 7d)' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand audit; and __fish_seen_subcommand_from list" -l user -d 'Records of this user' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand audit; and __fish_seen_subcommand_from list" -l connection -d 'Records on this connection' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand audit; and __fish_seen_subcommand_from list" -l kind -d 'Records of this kind, or of its sub-kinds (`statement` matches `statement.blocked`)' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand audit; and __fish_seen_subcommand_from list" -l limit -d 'At most this many records (the newest)' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand audit; and __fish_seen_subcommand_from list" -s o -l output -d 'Output format' -r -f -a "table\t'Aligned columns for people'
json\t'The broker\'s JSON, for scripts'"
complete -c hoopctl -n "__fish_hoopctl_using_subcommand audit; and __fish_seen_subcommand_from list" -l broker -d 'Broker URL, e.g. https://hoop.example.com:8443 [default: $HOOP_BROKER, then config.toml]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand audit; and __fish_seen_subcommand_from list" -l ca-file -d 'PEM file with the CA certificate that signs the broker\'s TLS certificate, when it is not in the system trust store [default: $HOOP_CA_FILE, then config.toml]' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand audit; and __fish_seen_subcommand_from list" -l token-file -d 'Read the bearer token from this file instead of the stored login (a CI job\'s OIDC token, a Kubernetes projected token); re-read when the token in it expires' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand audit; and __fish_seen_subcommand_from list" -l audience -d 'Audience to request when hoopctl fetches a GitHub Actions OIDC token [default: $HOOP_AUDIENCE, then "hoop"]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand audit; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand audit; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand audit; and __fish_seen_subcommand_from ls" -l since -d 'Records since this time: RFC 3339 (2025-01-31T08:00:00Z) or a duration ago (2h, 7d)' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand audit; and __fish_seen_subcommand_from ls" -l user -d 'Records of this user' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand audit; and __fish_seen_subcommand_from ls" -l connection -d 'Records on this connection' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand audit; and __fish_seen_subcommand_from ls" -l kind -d 'Records of this kind, or of its sub-kinds (`statement` matches `statement.blocked`)' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand audit; and __fish_seen_subcommand_from ls" -l limit -d 'At most this many records (the newest)' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand audit; and __fish_seen_subcommand_from ls" -s o -l output -d 'Output format' -r -f -a "table\t'Aligned columns for people'
json\t'The broker\'s JSON, for scripts'"
complete -c hoopctl -n "__fish_hoopctl_using_subcommand audit; and __fish_seen_subcommand_from ls" -l broker -d 'Broker URL, e.g. https://hoop.example.com:8443 [default: $HOOP_BROKER, then config.toml]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand audit; and __fish_seen_subcommand_from ls" -l ca-file -d 'PEM file with the CA certificate that signs the broker\'s TLS certificate, when it is not in the system trust store [default: $HOOP_CA_FILE, then config.toml]' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand audit; and __fish_seen_subcommand_from ls" -l token-file -d 'Read the bearer token from this file instead of the stored login (a CI job\'s OIDC token, a Kubernetes projected token); re-read when the token in it expires' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand audit; and __fish_seen_subcommand_from ls" -l audience -d 'Audience to request when hoopctl fetches a GitHub Actions OIDC token [default: $HOOP_AUDIENCE, then "hoop"]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand audit; and __fish_seen_subcommand_from ls" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand audit; and __fish_seen_subcommand_from ls" -s V -l version -d 'Print version'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand audit; and __fish_seen_subcommand_from export" -s o -l output -d 'Write to this file instead of stdout' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand audit; and __fish_seen_subcommand_from export" -l broker -d 'Broker URL, e.g. https://hoop.example.com:8443 [default: $HOOP_BROKER, then config.toml]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand audit; and __fish_seen_subcommand_from export" -l ca-file -d 'PEM file with the CA certificate that signs the broker\'s TLS certificate, when it is not in the system trust store [default: $HOOP_CA_FILE, then config.toml]' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand audit; and __fish_seen_subcommand_from export" -l token-file -d 'Read the bearer token from this file instead of the stored login (a CI job\'s OIDC token, a Kubernetes projected token); re-read when the token in it expires' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand audit; and __fish_seen_subcommand_from export" -l audience -d 'Audience to request when hoopctl fetches a GitHub Actions OIDC token [default: $HOOP_AUDIENCE, then "hoop"]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand audit; and __fish_seen_subcommand_from export" -s h -l help -d 'Print help'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand audit; and __fish_seen_subcommand_from export" -s V -l version -d 'Print version'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand audit; and __fish_seen_subcommand_from verify" -s f -l file -d 'Verify this export file offline instead of fetching one from the broker' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand audit; and __fish_seen_subcommand_from verify" -l key -d 'Accept checkpoints only from this key id (repeatable; see `hoopctl audit verify` output or GET /v1/audit/keys)' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand audit; and __fish_seen_subcommand_from verify" -l broker -d 'Broker URL, e.g. https://hoop.example.com:8443 [default: $HOOP_BROKER, then config.toml]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand audit; and __fish_seen_subcommand_from verify" -l ca-file -d 'PEM file with the CA certificate that signs the broker\'s TLS certificate, when it is not in the system trust store [default: $HOOP_CA_FILE, then config.toml]' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand audit; and __fish_seen_subcommand_from verify" -l token-file -d 'Read the bearer token from this file instead of the stored login (a CI job\'s OIDC token, a Kubernetes projected token); re-read when the token in it expires' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand audit; and __fish_seen_subcommand_from verify" -l audience -d 'Audience to request when hoopctl fetches a GitHub Actions OIDC token [default: $HOOP_AUDIENCE, then "hoop"]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand audit; and __fish_seen_subcommand_from verify" -s h -l help -d 'Print help'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand audit; and __fish_seen_subcommand_from verify" -s V -l version -d 'Print version'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand audit; and __fish_seen_subcommand_from help" -f -a "list" -d 'List audit records (the newest --limit, oldest first)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand audit; and __fish_seen_subcommand_from help" -f -a "export" -d 'Write the whole log as JSON Lines: records with hashes, checkpoints, public keys'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand audit; and __fish_seen_subcommand_from help" -f -a "verify" -d 'Verify the hash chain and the signed checkpoints (an export file, or the broker\'s log)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand audit; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and not __fish_seen_subcommand_from list ls show replay export help" -l broker -d 'Broker URL, e.g. https://hoop.example.com:8443 [default: $HOOP_BROKER, then config.toml]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and not __fish_seen_subcommand_from list ls show replay export help" -l ca-file -d 'PEM file with the CA certificate that signs the broker\'s TLS certificate, when it is not in the system trust store [default: $HOOP_CA_FILE, then config.toml]' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and not __fish_seen_subcommand_from list ls show replay export help" -l token-file -d 'Read the bearer token from this file instead of the stored login (a CI job\'s OIDC token, a Kubernetes projected token); re-read when the token in it expires' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and not __fish_seen_subcommand_from list ls show replay export help" -l audience -d 'Audience to request when hoopctl fetches a GitHub Actions OIDC token [default: $HOOP_AUDIENCE, then "hoop"]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and not __fish_seen_subcommand_from list ls show replay export help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and not __fish_seen_subcommand_from list ls show replay export help" -s V -l version -d 'Print version'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and not __fish_seen_subcommand_from list ls show replay export help" -f -a "list" -d 'List sessions, newest first (yours; everyone\'s for admins and auditors)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and not __fish_seen_subcommand_from list ls show replay export help" -f -a "ls" -d 'List sessions, newest first (yours; everyone\'s for admins and auditors)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and not __fish_seen_subcommand_from list ls show replay export help" -f -a "show" -d 'Show a session: who, where, when, and its statements or SSH commands'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and not __fish_seen_subcommand_from list ls show replay export help" -f -a "replay" -d 'Play a session back: Postgres statements with their outcomes, or an SSH shell, at recorded speed'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and not __fish_seen_subcommand_from list ls show replay export help" -f -a "export" -d 'Write a session\'s recording: JSON for Postgres, asciicast v2 for an SSH shell'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and not __fish_seen_subcommand_from list ls show replay export help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from list" -l user -d 'Sessions of this user' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from list" -l connection -d 'Sessions on this connection' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from list" -l since -d 'Sessions opened since this time: RFC 3339 (2025-01-31T08:00:00Z) or a duration ago (1h, 7d)' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from list" -l limit -d 'At most this many sessions (the newest)' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from list" -s o -l output -d 'Output format' -r -f -a "table\t'Aligned columns for people'
json\t'The broker\'s JSON, for scripts'"
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from list" -l broker -d 'Broker URL, e.g. https://hoop.example.com:8443 [default: $HOOP_BROKER, then config.toml]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from list" -l ca-file -d 'PEM file with the CA certificate that signs the broker\'s TLS certificate, when it is not in the system trust store [default: $HOOP_CA_FILE, then config.toml]' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from list" -l token-file -d 'Read the bearer token from this file instead of the stored login (a CI job\'s OIDC token, a Kubernetes projected token); re-read when the token in it expires' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from list" -l audience -d 'Audience to request when hoopctl fetches a GitHub Actions OIDC token [default: $HOOP_AUDIENCE, then "hoop"]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from ls" -l user -d 'Sessions of this user' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from ls" -l connection -d 'Sessions on this connection' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from ls" -l since -d 'Sessions opened since this time: RFC 3339 (2025-01-31T08:00:00Z) or a duration ago (1h, 7d)' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from ls" -l limit -d 'At most this many sessions (the newest)' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from ls" -s o -l output -d 'Output format' -r -f -a "table\t'Aligned columns for people'
json\t'The broker\'s JSON, for scripts'"
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from ls" -l broker -d 'Broker URL, e.g. https://hoop.example.com:8443 [default: $HOOP_BROKER, then config.toml]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from ls" -l ca-file -d 'PEM file with the CA certificate that signs the broker\'s TLS certificate, when it is not in the system trust store [default: $HOOP_CA_FILE, then config.toml]' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from ls" -l token-file -d 'Read the bearer token from this file instead of the stored login (a CI job\'s OIDC token, a Kubernetes projected token); re-read when the token in it expires' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from ls" -l audience -d 'Audience to request when hoopctl fetches a GitHub Actions OIDC token [default: $HOOP_AUDIENCE, then "hoop"]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from ls" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from ls" -s V -l version -d 'Print version'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from show" -s o -l output -d 'Output format' -r -f -a "table\t'Aligned columns for people'
json\t'The broker\'s JSON, for scripts'"
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from show" -l broker -d 'Broker URL, e.g. https://hoop.example.com:8443 [default: $HOOP_BROKER, then config.toml]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from show" -l ca-file -d 'PEM file with the CA certificate that signs the broker\'s TLS certificate, when it is not in the system trust store [default: $HOOP_CA_FILE, then config.toml]' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from show" -l token-file -d 'Read the bearer token from this file instead of the stored login (a CI job\'s OIDC token, a Kubernetes projected token); re-read when the token in it expires' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from show" -l audience -d 'Audience to request when hoopctl fetches a GitHub Actions OIDC token [default: $HOOP_AUDIENCE, then "hoop"]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from show" -s V -l version -d 'Print version'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from replay" -l speed -d 'Playback speed factor (2 = twice as fast)' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from replay" -l max-idle -d 'Cut pauses longer than this many seconds' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from replay" -l part -d 'SSH: which shell of the session (0 = the first)' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from replay" -l broker -d 'Broker URL, e.g. https://hoop.example.com:8443 [default: $HOOP_BROKER, then config.toml]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from replay" -l ca-file -d 'PEM file with the CA certificate that signs the broker\'s TLS certificate, when it is not in the system trust store [default: $HOOP_CA_FILE, then config.toml]' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from replay" -l token-file -d 'Read the bearer token from this file instead of the stored login (a CI job\'s OIDC token, a Kubernetes projected token); re-read when the token in it expires' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from replay" -l audience -d 'Audience to request when hoopctl fetches a GitHub Actions OIDC token [default: $HOOP_AUDIENCE, then "hoop"]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from replay" -l index -d 'SSH: print the session\'s recording index (shells, commands, transfers) as JSON instead'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from replay" -s h -l help -d 'Print help'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from replay" -s V -l version -d 'Print version'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from export" -l out -d 'Write to this file instead of stdout' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from export" -l part -d 'SSH: which shell of the session (0 = the first)' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from export" -l broker -d 'Broker URL, e.g. https://hoop.example.com:8443 [default: $HOOP_BROKER, then config.toml]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from export" -l ca-file -d 'PEM file with the CA certificate that signs the broker\'s TLS certificate, when it is not in the system trust store [default: $HOOP_CA_FILE, then config.toml]' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from export" -l token-file -d 'Read the bearer token from this file instead of the stored login (a CI job\'s OIDC token, a Kubernetes projected token); re-read when the token in it expires' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from export" -l audience -d 'Audience to request when hoopctl fetches a GitHub Actions OIDC token [default: $HOOP_AUDIENCE, then "hoop"]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from export" -s h -l help -d 'Print help'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from export" -s V -l version -d 'Print version'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from help" -f -a "list" -d 'List sessions, newest first (yours; everyone\'s for admins and auditors)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from help" -f -a "show" -d 'Show a session: who, where, when, and its statements or SSH commands'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from help" -f -a "replay" -d 'Play a session back: Postgres statements with their outcomes, or an SSH shell, at recorded speed'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from help" -f -a "export" -d 'Write a session\'s recording: JSON for Postgres, asciicast v2 for an SSH shell'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and not __fish_seen_subcommand_from login logout whoami connections connect exec requests approve deny policy completions audit sessions help" -f -a "login" -d 'Log in with your identity provider (OAuth device flow) and store the tokens'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and not __fish_seen_subcommand_from login logout whoami connections connect exec requests approve deny policy completions audit sessions help" -f -a "logout" -d 'Forget the stored login (keyring entry and token file)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and not __fish_seen_subcommand_from login logout whoami connections connect exec requests approve deny policy completions audit sessions help" -f -a "whoami" -d 'Show who the broker sees you as, and when your login expires'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and not __fish_seen_subcommand_from login logout whoami connections connect exec requests approve deny policy completions audit sessions help" -f -a "connections" -d 'List the connections you may open'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and not __fish_seen_subcommand_from login logout whoami connections connect exec requests approve deny policy completions audit sessions help" -f -a "connect" -d 'Open a session on a connection and tunnel local clients to it'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and not __fish_seen_subcommand_from login logout whoami connections connect exec requests approve deny policy completions audit sessions help" -f -a "exec" -d 'Run SQL (or a client command) on a connection, for scripts and CI; never prompts'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and not __fish_seen_subcommand_from login logout whoami connections connect exec requests approve deny policy completions audit sessions help" -f -a "requests" -d 'Your access requests: list, show, cancel, revoke'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and not __fish_seen_subcommand_from login logout whoami connections connect exec requests approve deny policy completions audit sessions help" -f -a "approve" -d 'Requests waiting for your approval; approve one'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and not __fish_seen_subcommand_from login logout whoami connections connect exec requests approve deny policy completions audit sessions help" -f -a "deny" -d 'Deny an access request waiting for your approval'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and not __fish_seen_subcommand_from login logout whoami connections connect exec requests approve deny policy completions audit sessions help" -f -a "policy" -d 'Read, check, apply and test the access policy'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and not __fish_seen_subcommand_from login logout whoami connections connect exec requests approve deny policy completions audit sessions help" -f -a "completions" -d 'Print a shell completion script'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and not __fish_seen_subcommand_from login logout whoami connections connect exec requests approve deny policy completions audit sessions help" -f -a "audit" -d 'The tamper-evident audit log: list, export, verify (admins and auditors)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and not __fish_seen_subcommand_from login logout whoami connections connect exec requests approve deny policy completions audit sessions help" -f -a "sessions" -d 'Recorded sessions: list, show, replay and export them'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and not __fish_seen_subcommand_from login logout whoami connections connect exec requests approve deny policy completions audit sessions help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and __fish_seen_subcommand_from requests" -f -a "list" -d 'Your requests, newest first'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and __fish_seen_subcommand_from requests" -f -a "show" -d 'One request: state, reason, approvers, decisions, grant'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and __fish_seen_subcommand_from requests" -f -a "cancel" -d 'Withdraw a pending request of yours'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and __fish_seen_subcommand_from requests" -f -a "revoke" -d 'End a request\'s grant now (its approvers and policy admins); its live sessions end'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and __fish_seen_subcommand_from approve" -f -a "list" -d 'Pending requests you may decide (never your own)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and __fish_seen_subcommand_from policy" -f -a "get" -d 'Print the policy in force, or write its files into a directory'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and __fish_seen_subcommand_from policy" -f -a "diff" -d 'Validate a policy file or directory and show what applying it would change (changes nothing)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and __fish_seen_subcommand_from policy" -f -a "apply" -d 'Make a policy file or directory the policy in force (policy admins only)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and __fish_seen_subcommand_from policy" -f -a "test" -d 'Show how the policy decides for an identity and connection (changes nothing)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and __fish_seen_subcommand_from audit" -f -a "list" -d 'List audit records (the newest --limit, oldest first)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and __fish_seen_subcommand_from audit" -f -a "export" -d 'Write the whole log as JSON Lines: records with hashes, checkpoints, public keys'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and __fish_seen_subcommand_from audit" -f -a "verify" -d 'Verify the hash chain and the signed checkpoints (an export file, or the broker\'s log)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and __fish_seen_subcommand_from sessions" -f -a "list" -d 'List sessions, newest first (yours; everyone\'s for admins and auditors)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and __fish_seen_subcommand_from sessions" -f -a "show" -d 'Show a session: who, where, when, and its statements or SSH commands'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and __fish_seen_subcommand_from sessions" -f -a "replay" -d 'Play a session back: Postgres statements with their outcomes, or an SSH shell, at recorded speed'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and __fish_seen_subcommand_from sessions" -f -a "export" -d 'Write a session\'s recording: JSON for Postgres, asciicast v2 for an SSH shell'
