"""``python -m catalogstore``: the command line, as the ``catalogstore`` script runs it."""

from catalogstore.cli import app

if __name__ == "__main__":
    app(prog_name="catalogstore")  # usage and help read as they do for the script
