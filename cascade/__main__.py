"""`python -m cascade`: the same command line as `cascade`."""

from cascade.cli.main import main

if __name__ == "__main__":
    main()
