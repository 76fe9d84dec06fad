"""Your module: hand it in with helpers.ipynb."""


def double(x):
    """2 * x."""
    raise NotImplementedError("write double in helper.py")
