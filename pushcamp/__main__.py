from pushcamp.cli import main

main()
