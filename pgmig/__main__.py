from pgmig.cli.app import main

main()
