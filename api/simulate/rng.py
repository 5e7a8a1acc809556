"""A counter-based random generator: every draw is a hash of its coordinates.

`hash_keys(seed, stream, entity, counter)` cascades the splitmix64 finaliser over
the keys, so a value depends only on its coordinates -- never on call order, on
the size of the request, on the process or the thread. Distinct coordinates give
independent 64-bit values (the cascade is a bijection per step), which removes
the original's collisions (it seeded with a sum of ordinals).
"""

from __future__ import annotations

import hashlib

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MUL1 = np.uint64(0xBF58476D1CE4E5B9)
_MUL2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S32, _S11 = (np.uint64(n) for n in (30, 27, 31, 32, 11))
_LOW32 = np.uint64(0xFFFFFFFF)
_TWO_PI = 2.0 * np.pi


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijection on uint64 with full avalanche."""
    x = (x ^ (x >> _S30)) * _MUL1
    x = (x ^ (x >> _S27)) * _MUL2
    return x ^ (x >> _S31)


def hash_keys(*keys: int | np.ndarray) -> np.ndarray:
    """One uint64 per broadcast element of the keys (ints or integer arrays)."""
    arrays = [np.asarray(k).astype(np.uint64, copy=False) for k in keys]
    h = np.zeros(np.broadcast_shapes(*(a.shape for a in arrays)) or (1,), np.uint64)
    return hash_on(h, *arrays)


def hash_on(h: np.ndarray, *keys: int | np.ndarray) -> np.ndarray:
    """The cascade continued from h = hash_keys(k1, .., kn): hash_on(h, m1, ..) == hash_keys(k1, .., kn, m1, ..).

    A prefix shared by many draws (seed, stream, a door's key) is then mixed once per door,
    not once per door-hour: the same values at a quarter of the cost."""
    for k in keys:
        # A scalar key as a 1-element array: array arithmetic wraps around silently, where numpy
        # scalars would warn on overflow (and an errstate block per call costs more than a mix).
        a = np.asarray(k).astype(np.uint64, copy=False).reshape(np.shape(k) or (1,))
        h = _mix(h ^ (a * _GOLDEN + _GOLDEN))
    return h


def rehash(h: np.ndarray, stream: int) -> np.ndarray:
    """A second independent hash at the same coordinates, for another purpose: one mix instead
    of hashing every key again."""
    with np.errstate(over="ignore"):
        return _mix(h ^ (np.uint64(stream) * _GOLDEN + _GOLDEN))


def uniform(h: np.ndarray) -> np.ndarray:
    """Floats in [0, 1) from the top 53 bits."""
    return (h >> _S11).astype(np.float64) * (1.0 / 9007199254740992.0)


def uniform_pair(h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two independent floats in (0, 1) from the two 32-bit halves."""
    scale = 1.0 / 4294967296.0
    hi = ((h >> _S32).astype(np.float64) + 0.5) * scale
    lo = ((h & _LOW32).astype(np.float64) + 0.5) * scale
    return hi, lo


def normal(h: np.ndarray) -> np.ndarray:
    """Standard normal draws (Box-Muller on the two halves of each hash)."""
    u1, u2 = uniform_pair(h)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(_TWO_PI * u2)


def gamma_factor(z: np.ndarray, variance: float) -> np.ndarray:
    """Gamma draws of mean 1 and the given variance from standard normals (Wilson-Hilferty:
    Gamma(k) ~ k (1 - 1/(9k) + z / (3 sqrt k))^3, k = 1 / variance; good for k above 1)."""
    if variance <= 0:
        return np.ones_like(z)
    k = 1.0 / variance
    return np.maximum(1.0 - 1.0 / (9.0 * k) + z / (3.0 * np.sqrt(k)), 0.0) ** 3


_POISSON_NORMAL_FROM = 20.0  # above this mean, Cornish-Fisher's normal expansion is within a count


def poisson(h: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """Poisson counts of means lam, one hash each: the inverse CDF of uniform(h) for small means
    (a loop over counts, never over elements), the Cornish-Fisher expansion of normal(h) above."""
    lam = np.asarray(lam, np.float64)
    h = np.broadcast_to(h, lam.shape)
    out = np.zeros(lam.shape)
    big = lam > _POISSON_NORMAL_FROM
    z = normal(h[big])
    out[big] = np.maximum(np.floor(lam[big] + np.sqrt(lam[big]) * z + (z * z - 1.0) / 6.0 + 0.5), 0.0)
    small = np.nonzero(~big & (lam > 0))
    mean, u = lam[small], uniform(h[small])
    k = np.zeros(mean.shape)
    p = np.exp(-mean)
    cdf = p.copy()
    # The search goes on for the draws not yet below their CDF, kept packed (a boolean compress of
    # each per step, cheaper than gathering and scattering through an index): the same operations
    # in the same order on each draw, so the same counts.
    keep = u > cdf
    where, mean, u, p, cdf = np.nonzero(keep)[0], mean[keep], u[keep], p[keep], cdf[keep]
    step = 0.0
    while where.size and step < 200:  # 200: far past any mean of 20 (rounding cannot stall it)
        step += 1.0
        k[where] = step
        p = p * (mean / step)
        cdf = cdf + p
        keep = u > cdf
        where, mean, u, p, cdf = where[keep], mean[keep], u[keep], p[keep], cdf[keep]
    out[small] = k
    return out


def between(u: np.ndarray | float, bounds: tuple[float, float]) -> np.ndarray:
    """Map uniforms in [0, 1) onto [lo, hi)."""
    lo, hi = bounds
    return lo + (hi - lo) * np.asarray(u)


def name_key(*parts: str | int) -> int:
    """A stable 63-bit key for a named entity ("Paris", 12): the same in every process."""
    text = "\x1f".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little") >> 1


class Stream:
    """Purpose ids, so that draws for different purposes never share a hash."""

    DOOR_WEIGHT = 1
    DOOR_NOISE = 2
    DOOR_ANOMALY = 3
    DOOR_FAILURE = 4
    DOOR_REPLACE = 5
    STORE_SURGE = 6
    STORE_EXPANSION = 7
    ROBOT_PHASE = 11
    ROBOT_NOISE = 12
    ROBOT_BLOCK = 13
    ROBOT_WEAR = 14
    DOOR_COUNT = 15
    DOOR_BURST = 16
    DOOR_DIP = 17
    STORE_DAY = 18
    STORE_DAY_OFF = 19
