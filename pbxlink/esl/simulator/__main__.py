from pbxlink.esl.simulator.cli import main

main()
