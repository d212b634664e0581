from dbcrate.cli.commands import main

main()
