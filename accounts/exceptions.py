from exchange_site.exceptions import ConflictError, ExchangeError


class EmailTaken(ConflictError):
    code = "EMAIL_TAKEN"
    message = "An account with this email already exists."


class UsernameTaken(ConflictError):
    code = "USERNAME_TAKEN"
    message = "This username is taken."


class InvalidCredentials(ExchangeError):
    code = "INVALID_CREDENTIALS"
    status = 401
    # One message for an unknown login and a wrong password: no account enumeration.
    message = "Invalid login or password."


class InvalidToken(ExchangeError):
    code = "TOKEN_INVALID"
    status = 401
    message = "The token is invalid, expired or revoked."


class TokenOwnerMismatch(ExchangeError):
    code = "PERMISSION_DENIED"
    status = 403
    message = "This refresh token belongs to another user."
