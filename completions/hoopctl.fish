complete --keep-order --exclusive --command hoopctl --arguments "(HOOPCTL_COMPLETE=fish hoopctl -- (commandline --current-process --tokenize --cut-at-cursor) (commandline --current-token))"
