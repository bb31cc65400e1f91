"""User-facing errors: one clear line naming the file, element or field, and what was expected."""


class UserError(Exception):
    """A problem with the user's input (scene, dataset, mesh, flag). The CLI prints it as one line and exits 2."""

    exit_code = 2
