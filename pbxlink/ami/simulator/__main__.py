from pbxlink.ami.simulator.cli import main

main()
