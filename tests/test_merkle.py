"""The Merkle tree of RFC 9162 section 2.1: roots and proofs from stored nodes, and verifiers.

Everything is checked against a reference written here straight from the RFC's recursive
definitions (MTH, PATH, PROOF/SUBPROOF) and its verification algorithms, without calling the
module under test, and against the known roots of the Certificate Transparency test vectors.
"""

import hashlib
import random

import pytest

from rights.ledger import merkle

MAX = 300


# --- The reference: RFC 9162 section 2.1, recursion for recursion ---------------------------


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def ref_leaf(data: bytes) -> bytes:
    return sha256(b"\x00" + data)


def ref_k(n: int) -> int:
    """The largest power of two smaller than n."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


class Ref:
    """A list of leaf hashes D, with MTH / PATH / PROOF over its ranges D[lo:hi]."""

    def __init__(self, leaves: list[bytes]):
        self.leaves = leaves
        self.memo: dict[tuple[int, int], bytes] = {}

    def mth(self, lo: int, hi: int) -> bytes:
        if (lo, hi) not in self.memo:
            n = hi - lo
            if n == 0:
                h = sha256(b"")  # MTH({}) = HASH()
            elif n == 1:
                h = self.leaves[lo]  # MTH({d(0)}) = HASH(0x00 || d(0)), already hashed
            else:
                k = ref_k(n)
                h = sha256(b"\x01" + self.mth(lo, lo + k) + self.mth(lo + k, hi))
            self.memo[lo, hi] = h
        return self.memo[lo, hi]

    def path(self, m: int, lo: int, hi: int) -> list[bytes]:
        """PATH(m, D[lo:hi]), m relative to lo."""
        n = hi - lo
        if n == 1:
            return []  # PATH(0, {d(0)}) = {}
        k = ref_k(n)
        if m < k:
            return self.path(m, lo, lo + k) + [self.mth(lo + k, hi)]
        return self.path(m - k, lo + k, hi) + [self.mth(lo, lo + k)]

    def subproof(self, m: int, lo: int, hi: int, b: bool) -> list[bytes]:
        """SUBPROOF(m, D[lo:hi], b), m relative to lo."""
        n = hi - lo
        if m == n:
            return [] if b else [self.mth(lo, hi)]
        k = ref_k(n)
        if m <= k:
            return self.subproof(m, lo, lo + k, b) + [self.mth(lo + k, hi)]
        return self.subproof(m - k, lo + k, hi, False) + [self.mth(lo, lo + k)]

    def proof(self, m: int, n: int) -> list[bytes]:
        """PROOF(m, D[n]) = SUBPROOF(m, D[n], true)."""
        return self.subproof(m, 0, n, True)


def ref_verify_inclusion(hash_, leaf_index, tree_size, inclusion_path, root_hash) -> bool:
    """RFC 9162 section 2.1.3.2, step by step."""
    if leaf_index >= tree_size:
        return False
    fn = leaf_index
    sn = tree_size - 1
    r = hash_
    for p in inclusion_path:
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            r = sha256(b"\x01" + p + r)
            if fn % 2 == 0:
                while fn % 2 == 0 and fn != 0:
                    fn //= 2
                    sn //= 2
        else:
            r = sha256(b"\x01" + r + p)
        fn //= 2
        sn //= 2
    return sn == 0 and r == root_hash


def ref_verify_consistency(first, second, first_hash, second_hash, consistency_path) -> bool:
    """RFC 9162 section 2.1.4.2, step by step, for 0 < first < second."""
    assert 0 < first < second
    path = list(consistency_path)
    if not path:
        return False
    if first & (first - 1) == 0:
        path.insert(0, first_hash)
    fn = first - 1
    sn = second - 1
    while fn % 2 == 1:
        fn //= 2
        sn //= 2
    fr = path[0]
    sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            fr = sha256(b"\x01" + c + fr)
            sr = sha256(b"\x01" + c + sr)
            if fn % 2 == 0:
                while fn % 2 == 0 and fn != 0:
                    fn //= 2
                    sn //= 2
        else:
            sr = sha256(b"\x01" + sr + c)
        fn //= 2
        sn //= 2
    return fr == first_hash and sr == second_hash and sn == 0


# --- The store: complete subtrees, written once by merkle.completed_nodes -------------------


def build_store(leaves: list[bytes]) -> dict[tuple[int, int], bytes]:
    store: dict[tuple[int, int], bytes] = {}

    def get(level: int, k: int) -> bytes:
        return store[level, k]

    for index, leaf in enumerate(leaves):
        for level, k, h in merkle.completed_nodes(index, leaf, get):
            assert (level, k) not in store, "a node is written once"
            store[level, k] = h
    return store


class Reader:
    """``get_many`` over a store, as it stood when the tree had ``size`` leaves."""

    def __init__(self, store: dict[tuple[int, int], bytes], size: int):
        self.store, self.size, self.calls = store, size, 0

    def __call__(self, nodes: set[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        self.calls += 1
        assert isinstance(nodes, set)
        for level, k in nodes:
            assert (k + 1) << level <= self.size, f"node {(level, k)} is not complete yet"
        return {node: self.store[node] for node in nodes}


def honest(data: list[bytes]) -> tuple[Ref, dict]:
    leaves = [ref_leaf(d) for d in data]
    return Ref(leaves), build_store(leaves)


DATA = [b"leaf-%d" % i for i in range(MAX)]
REF, STORE = honest(DATA)


def root_of(store, n):
    return merkle.root(n, Reader(store, n))


def inclusion(store, index, n):
    return merkle.inclusion_proof(index, n, Reader(store, n))


def consistency(store, m, n):
    return merkle.consistency_proof(m, n, Reader(store, n))


# --- Known answers --------------------------------------------------------------------------

# The Certificate Transparency reference implementation's test vectors (RFC 6962, unchanged
# in RFC 9162): the roots of the first 1..8 of these leaves.
CT_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    bytes(range(0x50, 0x58)),
    bytes(range(0x60, 0x70)),
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def test_hashes_and_known_roots():
    assert merkle.leaf_hash(b"abc") == sha256(b"\x00abc")
    assert merkle.node_hash(b"L" * 32, b"R" * 32) == sha256(b"\x01" + b"L" * 32 + b"R" * 32)
    assert merkle.root(0, Reader({}, 0)) == sha256(b"")
    assert merkle.fold([]) == bytes.fromhex(
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    store = build_store([merkle.leaf_hash(d) for d in CT_LEAVES])
    for n, expected in enumerate(CT_ROOTS, start=1):
        assert root_of(store, n).hex() == expected


def test_the_rfc_example_tree():
    """RFC 9162 section 2.1.5: seven leaves a..f, j; g, h, i, k, l their parents."""
    node = {name: (x, x + 1) for x, name in enumerate("abcdefj")}
    node |= {"g": (0, 2), "h": (2, 4), "i": (4, 6), "k": (0, 4), "l": (4, 7)}

    def named(names: str) -> list[tuple[int, int]]:
        return [node[name] for name in names]

    assert merkle.inclusion_ranges(0, 7) == named("bhl")
    assert merkle.inclusion_ranges(3, 7) == named("cgl")
    assert merkle.inclusion_ranges(4, 7) == named("fjk")
    assert merkle.inclusion_ranges(6, 7) == named("ik")
    assert merkle.consistency_ranges(3, 7) == named("cdgl")
    assert merkle.consistency_ranges(4, 7) == named("l")
    assert merkle.consistency_ranges(6, 7) == named("ijk")
    assert merkle.range_pieces(4, 7) == [(1, 2), (0, 6)]
    assert merkle.range_pieces(0, 7) == [(2, 0), (1, 2), (0, 6)]


# --- The store ------------------------------------------------------------------------------


def test_the_store_holds_exactly_the_complete_subtrees():
    store: dict[tuple[int, int], bytes] = {}
    for n in range(1, MAX + 1):
        for level, k, h in merkle.completed_nodes(
            n - 1, REF.leaves[n - 1], lambda lv, x: store[lv, x]
        ):
            store[level, k] = h
        assert len(store) == 2 * n - n.bit_count()
        assert store.keys() == {
            (level, k) for level in range(n.bit_length()) for k in range(n >> level)
        }
    assert store == STORE
    for (level, k), h in store.items():
        assert h == REF.mth(k << level, (k + 1) << level)


def test_batches_agree_with_one_at_a_time():
    rng = random.Random(9162)
    for _ in range(20):
        store: dict[tuple[int, int], bytes] = {}
        start = 0
        while start < MAX:
            count = min(rng.choice([1, 2, 3, 7, 16, 33, 64]), MAX - start)
            leaves = REF.leaves[start : start + count]
            asked = []

            def get(level, k, start=start, asked=asked, store=store):
                asked.append((level, k))
                assert (k + 1) << level <= start, "only nodes stored before the batch are read"
                return store[level, k]

            made = merkle.completed_nodes_batch(start, leaves, get)
            assert len(set(asked)) == len(asked), "each stored node is read once at most"
            one_by_one, seen = [], dict(store)
            for index, leaf in enumerate(leaves, start=start):
                for level, k, h in merkle.completed_nodes(
                    index, leaf, lambda lv, x, seen=seen: seen[lv, x]
                ):
                    seen[level, k] = h
                    one_by_one.append((level, k, h))
            assert made == one_by_one
            for level, k, h in made:
                assert (level, k) not in store
                store[level, k] = h
            start += count
        assert store == STORE


# --- Roots and proofs from the store, against the reference --------------------------------


def test_roots():
    for n in range(MAX + 1):
        reader = Reader(STORE, n)
        assert merkle.root(n, reader) == REF.mth(0, n)
        assert reader.calls == 1


def _indices(n: int) -> list[int]:
    if n <= 100:
        return list(range(n))
    return sorted(
        i for i in {*range(0, n, 7), *range(n - 8, n), 63, 64, 127, 128, 255, 256} if i < n
    )


def test_inclusion_proofs():
    for n in range(1, MAX + 1):
        root = REF.mth(0, n)
        for index in range(n):
            reader = Reader(STORE, n)
            proof = merkle.inclusion_proof(index, n, reader)
            assert reader.calls == 1
            assert proof == REF.path(index, 0, n), (index, n)
            leaf = REF.leaves[index]
            assert merkle.verify_inclusion(leaf, index, n, proof, root)
            assert ref_verify_inclusion(leaf, index, n, proof, root)


def _pairs() -> list[tuple[int, int]]:
    rng = random.Random(6962)
    pairs = [(m, n) for n in range(1, 65) for m in range(1, n + 1)]
    for _ in range(2000):
        n = rng.randint(1, MAX)
        pairs.append((rng.randint(1, n), n))
    return pairs + [(m, MAX) for m in (1, 2, 3, 64, 128, 255, 256, 257, 299, 300)]


def test_consistency_proofs():
    for m, n in _pairs():
        reader = Reader(STORE, n)
        proof = merkle.consistency_proof(m, n, reader)
        assert reader.calls == 1
        root_m, root_n = REF.mth(0, m), REF.mth(0, n)
        assert merkle.verify_consistency(m, n, root_m, root_n, proof)
        if m == n:
            assert proof == []
        else:
            assert proof == REF.proof(m, n), (m, n)
            assert ref_verify_consistency(m, n, root_m, root_n, proof)


# --- What must be rejected -------------------------------------------------------------------


def both_reject_inclusion(leaf, index, n, proof, root):
    assert not merkle.verify_inclusion(leaf, index, n, proof, root)
    assert index >= n or not ref_verify_inclusion(leaf, index, n, proof, root)


def both_reject_consistency(m, n, root_m, root_n, proof):
    assert not merkle.verify_consistency(m, n, root_m, root_n, proof)
    if 0 < m < n:
        assert not ref_verify_consistency(m, n, root_m, root_n, proof)


SIZES = [*range(1, 41), 63, 64, 65, 127, 128, 129, 200]


def test_a_tampered_leaf_is_rejected():
    for n in SIZES:
        for j in {0, n // 2, n - 1}:
            data = list(DATA[:n])
            data[j] = b"tampered"
            bad, bad_store = honest(data)
            both_reject_inclusion(bad.leaves[j], j, n, inclusion(STORE, j, n), REF.mth(0, n))
            both_reject_inclusion(bad.leaves[j], j, n, inclusion(bad_store, j, n), REF.mth(0, n))
            for index in _indices(n)[::3]:
                if index != j:  # the forged tree's proofs cover leaf j
                    proof = inclusion(bad_store, index, n)
                    both_reject_inclusion(REF.leaves[index], index, n, proof, REF.mth(0, n))
            for m in range(j + 1, n):  # an old tree head that saw the real leaf j
                both_reject_consistency(
                    m, n, REF.mth(0, m), bad.mth(0, n), consistency(bad_store, m, n)
                )
            both_reject_consistency(n, n, REF.mth(0, n), bad.mth(0, n), [])


def test_a_removed_leaf_is_rejected():
    for n in SIZES[1:]:
        for j in {0, n // 2, n - 1}:
            data = DATA[:j] + DATA[j + 1 : n]
            bad, bad_store = honest(data)
            for index in range(j, n - 1):  # leaf index + 1 now claims to sit at index
                proof = inclusion(bad_store, index, n - 1)
                both_reject_inclusion(REF.leaves[index + 1], index, n - 1, proof, REF.mth(0, n - 1))
                both_reject_inclusion(REF.leaves[index + 1], index, n, proof, REF.mth(0, n))
            for m in range(j + 1, n - 1):
                proof = consistency(bad_store, m, n - 1)
                both_reject_consistency(m, n - 1, REF.mth(0, m), bad.mth(0, n - 1), proof)


def test_a_reordered_pair_is_rejected():
    for n in SIZES[1:]:
        for j in {0, n // 2 - 1, n - 2}:
            data = list(DATA[:n])
            data[j], data[j + 1] = data[j + 1], data[j]
            bad, bad_store = honest(data)
            for index in (j, j + 1):  # each leaf, at its new place, against the real root
                proof = inclusion(bad_store, index, n)
                assert merkle.verify_inclusion(bad.leaves[index], index, n, proof, bad.mth(0, n))
                both_reject_inclusion(bad.leaves[index], index, n, proof, REF.mth(0, n))
            for m in range(j + 2, n):
                proof = consistency(bad_store, m, n)
                both_reject_consistency(m, n, REF.mth(0, m), bad.mth(0, n), proof)


def test_a_forked_tree_is_rejected():
    for n in SIZES[1:]:
        for shared in {0, n // 2, n - 1}:
            fork, fork_store = honest(DATA[:shared] + [b"fork-%d" % i for i in range(shared, n)])
            both_reject_consistency(n, n, REF.mth(0, n), fork.mth(0, n), [])
            for m in range(1, n):
                for store in (STORE, fork_store):
                    proof = consistency(store, m, n)
                    if m <= shared:  # the trees agree up to there: that part is consistent
                        assert merkle.verify_consistency(
                            m, n, REF.mth(0, m), REF.mth(0, n), proof
                        ) == (store is STORE)
                    else:
                        both_reject_consistency(m, n, REF.mth(0, m), fork.mth(0, n), proof)
                        both_reject_consistency(m, n, fork.mth(0, m), REF.mth(0, n), proof)


def test_a_truncated_log_is_rejected():
    for n in SIZES[1:]:
        for m in range(1, n):
            proof = consistency(STORE, m, n)
            both_reject_consistency(n, m, REF.mth(0, n), REF.mth(0, m), proof)
            both_reject_consistency(n, m, REF.mth(0, n), REF.mth(0, m), [])
            both_reject_consistency(m, m, REF.mth(0, m), REF.mth(0, n), [])
        for index in range(n - 1):
            short = inclusion(STORE, index, n - 1)  # a proof for the shorter tree
            both_reject_inclusion(REF.leaves[index], index, n, short, REF.mth(0, n))
            full = inclusion(STORE, index, n)
            both_reject_inclusion(REF.leaves[index], index, n - 1, full, REF.mth(0, n - 1))
        both_reject_inclusion(REF.leaves[n - 1], n - 1, n - 1, [], REF.mth(0, n - 1))


def test_an_index_past_the_end_is_rejected():
    """Without the RFC's first check, [l1] would "prove" leaf 0 at index 2 of a 2-leaf tree."""
    for n in range(1, 21):
        for index in range(n):
            proof, leaf = inclusion(STORE, index, n), REF.leaves[index]
            for claimed in range(n, 2 * n + 1):
                both_reject_inclusion(leaf, claimed, n, proof, REF.mth(0, n))


def _flips(proof: list[bytes]):
    for i, element in enumerate(proof):
        for position in range(len(element)):
            changed = bytearray(element)
            changed[position] ^= 0x01
            yield proof[:i] + [bytes(changed)] + proof[i + 1 :]


FLIP_SIZES = [1, 2, 3, 5, 7, 8, 9, 31, 32, 33, 127, 128, 300]


def test_flipping_any_byte_of_a_proof_fails():
    for n in FLIP_SIZES:
        root = REF.mth(0, n)
        for index in {0, 1 % n, n // 2, n - 2 if n > 1 else 0, n - 1}:
            for bad in _flips(inclusion(STORE, index, n)):
                both_reject_inclusion(REF.leaves[index], index, n, bad, root)
        for m in {1, n // 3 or 1, n // 2 or 1, n - 1 or 1}:
            if m < n:
                for bad in _flips(consistency(STORE, m, n)):
                    both_reject_consistency(m, n, REF.mth(0, m), root, bad)


def test_wrong_length_proofs_fail():
    junk = sha256(b"junk")
    for n in FLIP_SIZES:
        root = REF.mth(0, n)
        for index in {0, n // 2, n - 1}:
            proof, leaf = inclusion(STORE, index, n), REF.leaves[index]
            wrong = [proof + [junk], proof + proof[-1:], [junk] + proof, proof[:-1], proof[1:]]
            for bad in wrong:
                if bad != proof:
                    both_reject_inclusion(leaf, index, n, bad, root)
        for m in range(1, n + 1):
            proof = consistency(STORE, m, n)
            for bad in [
                [],
                proof + [junk],
                proof + proof[-1:],
                [REF.mth(0, m)] + proof,
                proof[:-1],
            ]:
                if bad != proof:
                    both_reject_consistency(m, n, REF.mth(0, m), root, bad)


def test_the_verifiers_never_raise_on_garbage():
    h = REF.leaves[0]
    good = inclusion(STORE, 5, 13)
    leaf, root13 = REF.leaves[5], REF.mth(0, 13)
    assert merkle.verify_inclusion(leaf, 5, 13, good, root13)
    assert merkle.verify_inclusion(REF.leaves[0], 0, 1, [], REF.mth(0, 1))
    elements = [b"", h[:31], h + b"\x00", "a" * 32, None, 42, bytearray(h), [h]]
    for element in elements:
        assert not merkle.verify_inclusion(leaf, 5, 13, good[:1] + [element] + good[2:], root13)
        assert not merkle.verify_inclusion(element, 5, 13, good, root13)
        assert not merkle.verify_inclusion(leaf, 5, 13, good, element)
    for proof in [None, "abc", h, 7, {h}, iter(good)]:
        assert not merkle.verify_inclusion(leaf, 5, 13, proof, root13)
        assert not merkle.verify_consistency(3, 13, REF.mth(0, 3), root13, proof)
    for index, size in [
        (-1, 13),
        (5, -1),
        (13, 13),
        (14, 13),
        (0, 0),
        (5.0, 13),
        (5, "13"),
        (True, 13),
    ]:
        assert not merkle.verify_inclusion(leaf, index, size, good, root13)
    assert not merkle.verify_inclusion(leaf, 5, 2**70, good, root13)

    good = consistency(STORE, 5, 13)
    root5 = REF.mth(0, 5)
    assert merkle.verify_consistency(5, 13, root5, root13, good)
    for element in elements:
        assert not merkle.verify_consistency(5, 13, root5, root13, good[:1] + [element] + good[2:])
        assert not merkle.verify_consistency(5, 13, element, root13, good)
        assert not merkle.verify_consistency(5, 13, root5, element, good)
    for m, n in [(0, 13), (-1, 13), (5, -1), (13, 5), (5, 2**70), (5.0, 13), ("5", 13), (None, 13)]:
        assert not merkle.verify_consistency(m, n, root5, root13, good)
    # m == n: the very same tree, with an empty proof; from an empty tree no proof is defined.
    assert merkle.verify_consistency(13, 13, root13, root13, [])
    assert not merkle.verify_consistency(13, 13, root13, root13, [root13])
    assert not merkle.verify_consistency(0, 0, sha256(b""), sha256(b""), [])
    assert not merkle.verify_consistency(0, 13, sha256(b""), root13, [])


def test_builders_refuse_bad_arguments():
    reader = Reader(STORE, MAX)
    for index, size in [(0, 0), (5, 5), (6, 5), (-1, 5)]:
        with pytest.raises(ValueError, match="no leaf"):
            merkle.inclusion_proof(index, size, reader)
    for m, n in [(0, 5), (-1, 5), (6, 5), (0, 0)]:
        with pytest.raises(ValueError, match="no consistency proof"):
            merkle.consistency_proof(m, n, reader)
    with pytest.raises(ValueError):
        merkle.root(-1, reader)
    with pytest.raises(ValueError, match="boundary"):
        merkle.range_pieces(3, 7)  # four leaves from 3: not one subtree
    with pytest.raises(ValueError):
        merkle.range_pieces(5, 4)
    with pytest.raises(ValueError):
        merkle.completed_nodes(-1, REF.leaves[0], lambda level, k: b"")
    assert reader.calls == 0
