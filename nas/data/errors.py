"""The one exception type for data that is missing, incomplete or malformed."""


class DatasetError(Exception):
    """A dataset could not be loaded.

    The message always says which folder or file was read, what was expected there (file names,
    dtypes, shapes), and where the official files come from. Loaders translate numpy, pickle and
    torchvision errors into this type so that a user never has to read a library traceback to
    find out that a file is missing.
    """
