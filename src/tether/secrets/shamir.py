"""Shamir secret sharing over GF(2^8) for SOPS key groups.

With more than one key group the data key is split into one share per group, any
``threshold`` of which rebuild it. The share layout is the one SOPS uses: the polynomial's
value for each secret byte, followed by one byte holding the share's x coordinate. The field
is GF(2^8) with the AES reduction polynomial x^8 + x^4 + x^3 + x + 1.
"""

from __future__ import annotations

import secrets

from tether.errors import SecretsError


def _mul(a: int, b: int) -> int:
    result = 0
    while b:
        if b & 1:
            result ^= a
        a <<= 1
        if a & 0x100:
            a ^= 0x11B
        b >>= 1
    return result


def _inv(a: int) -> int:
    if a == 0:
        raise SecretsError("shamir: division by zero")
    # a^254 is the inverse in GF(2^8)
    result, base, exp = 1, a, 254
    while exp:
        if exp & 1:
            result = _mul(result, base)
        base = _mul(base, base)
        exp >>= 1
    return result


def _eval(coefficients: list[int], x: int) -> int:
    result = 0
    for coefficient in reversed(coefficients):
        result = _mul(result, x) ^ coefficient
    return result


def split(secret: bytes, parts: int, threshold: int) -> list[bytes]:
    if not 2 <= threshold <= parts <= 255:
        raise SecretsError(f"shamir: need 2 <= threshold ({threshold}) <= parts ({parts}) <= 255")
    if not secret:
        raise SecretsError("shamir: cannot split an empty secret")
    xs = list(range(1, 256))
    secrets.SystemRandom().shuffle(xs)
    xs = xs[:parts]
    shares = [bytearray() for _ in range(parts)]
    for byte in secret:
        coefficients = [byte] + [secrets.randbelow(256) for _ in range(threshold - 1)]
        for share, x in zip(shares, xs, strict=True):
            share.append(_eval(coefficients, x))
    return [bytes(share) + bytes([x]) for share, x in zip(shares, xs, strict=True)]


def combine(shares: list[bytes]) -> bytes:
    if len(shares) < 2:
        raise SecretsError("shamir: at least two shares are needed")
    length = len(shares[0])
    if length < 2 or any(len(s) != length for s in shares):
        raise SecretsError("shamir: shares have different or invalid lengths")
    xs = [s[-1] for s in shares]
    if len(set(xs)) != len(xs):
        raise SecretsError("shamir: duplicate shares")
    # Lagrange basis values at x = 0 (subtraction is xor in this field)
    basis = []
    for i, xi in enumerate(xs):
        numerator, denominator = 1, 1
        for j, xj in enumerate(xs):
            if i != j:
                numerator = _mul(numerator, xj)
                denominator = _mul(denominator, xi ^ xj)
        basis.append(_mul(numerator, _inv(denominator)))
    out = bytearray()
    for index in range(length - 1):
        value = 0
        for share, weight in zip(shares, basis, strict=True):
            value ^= _mul(share[index], weight)
        out.append(value)
    return bytes(out)
