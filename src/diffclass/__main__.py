from diffclass.cli import main

main()
