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
complete -c hoopctl -n "__fish_hoopctl_needs_command" -f -a "completions" -d 'Print a shell completion script'
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
complete -c hoopctl -n "__fish_hoopctl_using_subcommand connect" -s r -l reason -d 'Why you need access; recorded with the session' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand connect" -l broker -d 'Broker URL, e.g. https://hoop.example.com:8443 [default: $HOOP_BROKER, then config.toml]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand connect" -l ca-file -d 'PEM file with the CA certificate that signs the broker\'s TLS certificate, when it is not in the system trust store [default: $HOOP_CA_FILE, then config.toml]' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand connect" -l token-file -d 'Read the bearer token from this file instead of the stored login (a CI job\'s OIDC token, a Kubernetes projected token); re-read when the token in it expires' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand connect" -l audience -d 'Audience to request when hoopctl fetches a GitHub Actions OIDC token [default: $HOOP_AUDIENCE, then "hoop"]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand connect" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand connect" -s V -l version -d 'Print version'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand exec" -s r -l reason -d 'Why you need access; recorded with the session' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand exec" -s c -l sql -d 'SQL to run (repeatable; each is one query, run in order)' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand exec" -s f -l file -d 'File with SQL to run (`-` reads stdin)' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand exec" -s o -l output -d 'Output format for results' -r -f -a "table\t'Aligned columns for people'
json\t'The broker\'s JSON, for scripts'"
complete -c hoopctl -n "__fish_hoopctl_using_subcommand exec" -l wait -d 'How long to wait for an approval when the connection requires one, e.g. 10m [default: do not wait: exit with status 3 and the request id]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand exec" -l broker -d 'Broker URL, e.g. https://hoop.example.com:8443 [default: $HOOP_BROKER, then config.toml]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand exec" -l ca-file -d 'PEM file with the CA certificate that signs the broker\'s TLS certificate, when it is not in the system trust store [default: $HOOP_CA_FILE, then config.toml]' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand exec" -l token-file -d 'Read the bearer token from this file instead of the stored login (a CI job\'s OIDC token, a Kubernetes projected token); re-read when the token in it expires' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand exec" -l audience -d 'Audience to request when hoopctl fetches a GitHub Actions OIDC token [default: $HOOP_AUDIENCE, then "hoop"]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand exec" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand exec" -s V -l version -d 'Print version'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand completions" -l broker -d 'Broker URL, e.g. https://hoop.example.com:8443 [default: $HOOP_BROKER, then config.toml]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand completions" -l ca-file -d 'PEM file with the CA certificate that signs the broker\'s TLS certificate, when it is not in the system trust store [default: $HOOP_CA_FILE, then config.toml]' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand completions" -l token-file -d 'Read the bearer token from this file instead of the stored login (a CI job\'s OIDC token, a Kubernetes projected token); re-read when the token in it expires' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand completions" -l audience -d 'Audience to request when hoopctl fetches a GitHub Actions OIDC token [default: $HOOP_AUDIENCE, then "hoop"]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand completions" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand completions" -s V -l version -d 'Print version'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and not __fish_seen_subcommand_from login logout whoami connections connect exec completions help" -f -a "login" -d 'Log in with your identity provider (OAuth device flow) and store the tokens'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and not __fish_seen_subcommand_from login logout whoami connections connect exec completions help" -f -a "logout" -d 'Forget the stored login (keyring entry and token file)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and not __fish_seen_subcommand_from login logout whoami connections connect exec completions help" -f -a "whoami" -d 'Show who the broker sees you as, and when your login expires'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and not __fish_seen_subcommand_from login logout whoami connections connect exec completions help" -f -a "connections" -d 'List the connections you may open'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and not __fish_seen_subcommand_from login logout whoami connections connect exec completions help" -f -a "connect" -d 'Open a session on a connection and tunnel local clients to it'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and not __fish_seen_subcommand_from login logout whoami connections connect exec completions help" -f -a "exec" -d 'Run SQL (or a client command) on a connection, for scripts and CI; never prompts'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and not __fish_seen_subcommand_from login logout whoami connections connect exec completions help" -f -a "completions" -d 'Print a shell completion script'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and not __fish_seen_subcommand_from login logout whoami connections connect exec completions help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
