"""The one error type the composited-data builders raise for user-fixable problems."""


class CompositedDataError(RuntimeError):
    """A problem the user can fix (missing Fashion-MNIST, unwritable folder, impossible sizes).

    The command-line tools print its message and exit with status 2 instead of showing a traceback.
    """
