"""python -m flopcast.cli"""

from flopcast.cli import main

main()
