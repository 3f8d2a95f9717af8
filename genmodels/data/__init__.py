"""Training data: the emoji image set, the poem corpora, and users' own folders and files."""


class DataError(RuntimeError):
    """A dataset could not be built or read. The message says what to install or fix.

    Images that cannot be decoded raise the subclasses `imagefile.NotAnImage` and `imagefile.ImageTooLarge`.
    """
