"""Merkle tree hashes and proofs of RFC 9162 (Certificate Transparency 2.0) section 2.1.

Pure functions: no database, no Flask. The log that uses them stores the hash of every
*complete* subtree once and never rewrites it: node (level L, index k) is the Merkle Tree Hash
of the 2**L leaves D[k * 2**L : (k + 1) * 2**L], level 0 being the leaf hashes. Appending leaf i
completes node (0, i) and, while its index is odd, its parent with the stored left sibling
(:func:`completed_nodes`); a tree of n leaves has 2n - popcount(n) of them.

Every hash the RFC needs is the Merkle Tree Hash of a range D[start:end] whose start is aligned
to the largest power of two that fits in it: the RFC always splits a tree at the largest power
of two k < n, so the left part is a complete subtree and the right part starts on a multiple of
k. Such a range is the fold, from the right, of the complete subtrees in the binary expansion
of its length (:func:`range_pieces`, :func:`fold`). So a root or a proof is a "recipe" of
stored nodes, known before anything is read: :func:`root`, :func:`inclusion_proof` and
:func:`consistency_proof` ask their ``get_many`` for all of them at once, one query.

The verifiers follow RFC 9162 sections 2.1.3.2 and 2.1.4.2 step by step, and answer False,
never raise, on anything malformed.
"""

import hashlib
from collections.abc import Callable, Iterable, Sequence

HASH_SIZE = 32
Node = tuple[int, int]  # (level, index): the subtree D[index * 2**level : (index + 1) * 2**level]
GetMany = Callable[[set[Node]], dict[Node, bytes]]


def leaf_hash(data: bytes) -> bytes:
    """MTH({d}) = SHA-256(0x00 || d)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right), an interior node."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def completed_nodes(
    index: int, leaf: bytes, get: Callable[[int, int], bytes]
) -> list[tuple[int, int, bytes]]:
    """The nodes that appending ``leaf`` (a leaf hash) at ``index`` completes, lowest first.

    ``get(level, k)`` must return a stored node; it is asked only for left siblings, which are
    complete before this leaf arrives.
    """
    return completed_nodes_batch(index, [leaf], get)


def completed_nodes_batch(
    start: int, leaves: list[bytes], get: Callable[[int, int], bytes]
) -> list[tuple[int, int, bytes]]:
    """:func:`completed_nodes` for leaves appended at ``start``, ``start + 1``, ...

    Nodes completed within the batch are taken from memory: ``get`` is asked only for nodes
    stored before ``start``.
    """
    if start < 0:
        raise ValueError("a leaf index cannot be negative")
    made: dict[Node, bytes] = {}
    out: list[tuple[int, int, bytes]] = []
    for offset, leaf in enumerate(leaves):
        level, k, h = 0, start + offset, leaf
        made[level, k] = h
        out.append((level, k, h))
        while k % 2 == 1:  # a right child: its parent is now complete
            left = made.get((level, k - 1))
            h = node_hash(left if left is not None else get(level, k - 1), h)
            level, k = level + 1, k // 2
            made[level, k] = h
            out.append((level, k, h))
    return out


def _split(n: int) -> int:
    """The largest power of two smaller than n (n >= 2): RFC 9162's k."""
    return 1 << ((n - 1).bit_length() - 1)


def range_pieces(start: int, end: int) -> list[Node]:
    """The complete subtrees, left to right, whose :func:`fold` is MTH(D[start:end]).

    ``start`` must be a multiple of the largest power of two <= ``end - start``, as every range
    in RFC 9162's definitions is. The empty range has no pieces (its fold is MTH({})).
    """
    if start < 0 or end < start:
        raise ValueError(f"{start}:{end} is not a range of leaves")
    size, pieces = end - start, []
    if size and start % (1 << (size.bit_length() - 1)):
        raise ValueError(f"{start}:{end} does not start on a subtree boundary")
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            pieces.append((level, start >> level))
            start += 1 << level
    return pieces


def fold(pieces_hashes: Sequence[bytes]) -> bytes:
    """Right fold of the pieces' hashes: node_hash(p0, node_hash(p1, ...)); MTH({}) if none."""
    if not pieces_hashes:
        return hashlib.sha256(b"").digest()
    h = pieces_hashes[-1]
    for left in reversed(pieces_hashes[:-1]):
        h = node_hash(left, h)
    return h


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The ranges whose MTH make up PATH(index, D[size]) (section 2.1.3.1), leaf's sibling first."""
    if size < 1 or not 0 <= index < size:
        raise ValueError(f"no leaf {index} in a tree of {size}")
    lo, hi, top_down = 0, size, []
    while hi - lo > 1:
        mid = lo + _split(hi - lo)
        if index < mid:  # PATH(m, D[0:k]) : MTH(D[k:n])
            top_down.append((mid, hi))
            hi = mid
        else:  # PATH(m - k, D[k:n]) : MTH(D[0:k])
            top_down.append((lo, mid))
            lo = mid
    return top_down[::-1]


def consistency_ranges(m: int, n: int) -> list[tuple[int, int]]:
    """The ranges whose MTH make up PROOF(m, D[n]) (section 2.1.4.1); empty when m == n."""
    if m < 1 or m > n:
        raise ValueError(f"no consistency proof from {m} to {n} leaves (needs 1 <= m <= n)")
    lo, hi, whole, top_down = 0, n, True, []
    while hi != m:  # SUBPROOF(m - lo, D[lo:hi], whole)
        mid = lo + _split(hi - lo)
        if m <= mid:  # SUBPROOF(m, D[0:k], b) : MTH(D[k:n])
            top_down.append((mid, hi))
            hi = mid
        else:  # SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])
            top_down.append((lo, mid))
            lo, whole = mid, False
    base = [] if whole else [(lo, hi)]  # SUBPROOF(m, D[m], true) = {}; false: {MTH(D[m])}
    return base + top_down[::-1]


def _hashes(ranges: list[tuple[int, int]], get_many: GetMany) -> list[bytes]:
    """MTH of each range, reading every stored piece with a single ``get_many`` call."""
    recipes = [range_pieces(start, end) for start, end in ranges]
    stored = get_many({piece for recipe in recipes for piece in recipe})
    return [fold([stored[piece] for piece in recipe]) for recipe in recipes]


def root(size: int, get_many: GetMany) -> bytes:
    """MTH(D[size]) from the stored nodes; MTH({}) = SHA-256() for an empty tree."""
    if size < 0:
        raise ValueError("a tree size cannot be negative")
    return _hashes([(0, size)], get_many)[0]


def inclusion_proof(index: int, size: int, get_many: GetMany) -> list[bytes]:
    """PATH(index, D[size]) from the stored nodes."""
    return _hashes(inclusion_ranges(index, size), get_many)


def consistency_proof(m: int, n: int, get_many: GetMany) -> list[bytes]:
    """PROOF(m, D[n]) from the stored nodes (empty when m == n)."""
    return _hashes(consistency_ranges(m, n), get_many)


def _is_size(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _are_hashes(values: Iterable[object]) -> bool:
    return all(isinstance(v, bytes) and len(v) == HASH_SIZE for v in values)


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Whether ``proof`` shows ``leaf_hash`` at ``index`` in the tree of ``size`` with ``root``.

    RFC 9162 section 2.1.3.2.
    """
    if not (_is_size(index) and _is_size(size) and isinstance(proof, list | tuple)):
        return False
    if not _are_hashes([leaf_hash, root, *proof]) or index >= size:  # step 1
        return False
    fn, sn, r = index, size - 1, leaf_hash  # steps 2, 3
    for p in proof:  # step 4
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root  # step 5


def verify_consistency(
    m: int, n: int, root_m: bytes, root_n: bytes, proof: Sequence[bytes]
) -> bool:
    """Whether ``proof`` shows the tree of ``m`` leaves is a prefix of the tree of ``n``.

    RFC 9162 section 2.1.4.2, which is defined for 0 < m < n. When m == n the trees must be the
    same and the proof empty; m == 0 (no proof is defined from an empty tree) is refused.
    """
    if not (_is_size(m) and _is_size(n) and isinstance(proof, list | tuple)):
        return False
    if not _are_hashes([root_m, root_n, *proof]) or not 0 < m <= n:
        return False
    if m == n:
        return not proof and root_m == root_n
    if not proof:  # step 1
        return False
    path = [root_m, *proof] if m & (m - 1) == 0 else list(proof)  # step 2
    fn, sn = m - 1, n - 1  # step 3
    while fn & 1:  # step 4
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]  # step 5
    for c in path[1:]:  # step 6
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == root_m and sr == root_n  # step 7
