"""Tests for polynn.datasets: generators, file readers, helpers and the registry."""

import gzip
import struct

import numpy as np
import pytest

from polynn import datasets as ds

# --------------------------------------------------------------------------- helpers


def write_idx(path, array, code=0x08, *, gz=False, magic=None, cut=0):
    """Write ``array`` as IDX; ``magic`` replaces the 4 header bytes, ``cut`` drops final bytes."""
    array = np.asarray(array)
    dtype = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    head = magic if magic is not None else bytes([0, 0, code, array.ndim])
    dims = struct.pack(f">{array.ndim}I", *array.shape)
    blob = head + dims + array.astype(dtype).tobytes()
    if cut:
        blob = blob[:-cut]
    path.write_bytes(gzip.compress(blob) if gz else blob)
    return path


def write_mnist(directory, kind="train", m=5, rows=3, cols=4, *, gz=False, n_labels=None):
    prefix = "train" if kind == "train" else "t10k"
    suffix = ".gz" if gz else ""
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(m, rows, cols), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n_labels or m, dtype=np.uint8)
    write_idx(directory / f"{prefix}-images-idx3-ubyte{suffix}", images, gz=gz)
    write_idx(directory / f"{prefix}-labels-idx1-ubyte{suffix}", labels, gz=gz)
    return images, labels


def write_text(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def assert_xy(X, y, m, n):
    assert X.dtype == np.float64 and X.shape == (m, n)
    assert y.dtype == np.int64 and y.shape == (m,)


# --------------------------------------------------------------------------- synthetic data

GENERATORS = [
    (ds.spiral, {"n_per_class": 50, "n_classes": 3}, 150),
    (ds.moons, {"n_samples": 101}, 101),
    (ds.circles, {"n_samples": 101}, 101),
]


@pytest.mark.parametrize(("make", "kw", "m"), GENERATORS)
def test_generators_shapes_and_dtypes(make, kw, m):
    X, y = make(**kw)
    assert_xy(X, y, m, 2)
    assert np.all(np.isfinite(X))


@pytest.mark.parametrize(("make", "kw", "m"), GENERATORS)
def test_generators_deterministic_under_seed(make, kw, m):
    X1, y1 = make(**kw, seed=7)
    X2, y2 = make(**kw, seed=7)
    X3, _ = make(**kw, seed=8)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(X1, X3)


@pytest.mark.parametrize(("make", "kw", "m"), GENERATORS)
def test_generators_leave_global_random_state_alone(make, kw, m):
    np.random.seed(123)
    expected = np.random.random(3)
    np.random.seed(123)
    make(**kw)
    np.testing.assert_array_equal(np.random.random(3), expected)


def test_spiral_class_balance_and_order():
    X, y = ds.spiral(n_per_class=40, n_classes=5)
    assert np.array_equal(np.bincount(y), [40] * 5)
    assert np.array_equal(y, np.repeat(np.arange(5), 40))


def test_spiral_geometry_matches_reference_formula():
    n, k, noise = 30, 3, 0.2
    X, _ = ds.spiral(n, k, noise=noise, seed=3)
    rng = np.random.default_rng(3)
    r = np.linspace(0, 1, n)
    for j in range(k):
        t = np.linspace(j * 4, (j + 1) * 4, n) + rng.standard_normal(n) * noise
        np.testing.assert_allclose(X[j * n : (j + 1) * n], np.c_[r * np.sin(t), r * np.cos(t)])
    # every point lies at radius r from the origin, whatever the noise
    np.testing.assert_allclose(np.hypot(X[:, 0], X[:, 1]), np.tile(r, k), atol=1e-12)


@pytest.mark.parametrize("make", [ds.moons, ds.circles])
def test_two_class_generators_labels(make):
    _, y = make(n_samples=11)
    assert np.array_equal(y, [0] * 5 + [1] * 6)


@pytest.mark.parametrize(
    ("ours", "theirs", "kw"),
    [("moons", "make_moons", {}), ("circles", "make_circles", {"factor": 0.4})],
)
def test_noiseless_geometry_matches_sklearn(ours, theirs, kw):
    skd = pytest.importorskip("sklearn.datasets")
    X, y = getattr(ds, ours)(n_samples=31, noise=0.0, **kw)
    X_ref, y_ref = getattr(skd, theirs)(n_samples=31, noise=None, shuffle=False, **kw)
    np.testing.assert_allclose(X, X_ref, atol=1e-12)
    np.testing.assert_array_equal(y, y_ref)


def test_circles_radii():
    X, y = ds.circles(n_samples=40, noise=0.0, factor=0.3)
    radius = np.hypot(X[:, 0], X[:, 1])
    np.testing.assert_allclose(radius[y == 0], 1.0)
    np.testing.assert_allclose(radius[y == 1], 0.3)


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda: ds.spiral(0), ValueError, "n_per_class"),
        (lambda: ds.spiral(10, 2.5), TypeError, "n_classes"),
        (lambda: ds.spiral(noise=-1), ValueError, "noise"),
        (lambda: ds.moons(1), ValueError, "n_samples"),
        (lambda: ds.circles(factor=1.0), ValueError, "factor"),
    ],
)
def test_generators_reject_bad_arguments(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# --------------------------------------------------------------------------- digits


def test_digits():
    pytest.importorskip("sklearn")
    X, y = ds.digits()
    assert_xy(X, y, 1797, 64)
    assert X.min() == 0.0 and X.max() == 1.0
    assert np.array_equal(np.unique(y), np.arange(10))


def test_digits_without_sklearn_says_how_to_install(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_sklearn(name, *args, **kwargs):
        if name == "sklearn" or name.startswith("sklearn."):
            raise ImportError("No module named 'sklearn'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_sklearn)
    with pytest.raises(ImportError, match=r'pip install "polynn\[sklearn\]"'):
        ds.digits()


# --------------------------------------------------------------------------- IDX


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize(
    ("code", "values"),
    [
        (0x08, [[0, 255], [7, 128]]),
        (0x09, [[-128, 127], [0, -1]]),
        (0x0B, [[-30000, 2], [3, 30000]]),
        (0x0C, [[-(2**31), 2], [3, 2**31 - 1]]),
        (0x0D, [[0.5, -1.25], [3.0, 1e30]]),
        (0x0E, [[0.1, -1e-300], [np.pi, 1e300]]),
    ],
)
def test_read_idx_roundtrip_all_types(tmp_path, gz, code, values):
    # gzip is detected from the content, so the name never says ".gz"
    path = write_idx(tmp_path / "data.idx", values, code, gz=gz)
    out = ds.read_idx(path)
    assert out.shape == (2, 2)
    assert out.dtype.isnative
    assert out.dtype.itemsize == {0x08: 1, 0x09: 1, 0x0B: 2, 0x0C: 4, 0x0D: 4, 0x0E: 8}[code]
    np.testing.assert_array_equal(out, np.asarray(values, dtype=out.dtype))


def test_load_idx_images_and_labels(tmp_path):
    images = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    img = write_idx(tmp_path / "img", images)
    lab = write_idx(tmp_path / "lab", [3, 9], gz=True)
    np.testing.assert_array_equal(ds.load_idx(img), images)
    out, labels = ds.load_idx(img, lab)
    np.testing.assert_array_equal(out, images)
    assert labels.dtype == np.int64 and labels.tolist() == [3, 9]


@pytest.mark.parametrize("gz", [False, True])
def test_load_mnist(tmp_path, gz):
    images, labels = write_mnist(tmp_path, m=5, rows=3, cols=4, gz=gz)
    X, y = ds.load_mnist(tmp_path)
    assert_xy(X, y, 5, 12)
    np.testing.assert_allclose(X, images.reshape(5, 12) / 255.0)
    np.testing.assert_array_equal(y, labels)


def test_load_mnist_test_kind_uses_t10k(tmp_path):
    write_mnist(tmp_path, "train", m=5)
    write_mnist(tmp_path, "test", m=3, gz=True)
    X, y = ds.load_mnist(tmp_path, kind="test")
    assert X.shape == (3, 12) and y.shape == (3,)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"magic": b"\x01\x02\x08\x01"}, "bad magic"),
        ({"magic": b"\x00\x00\x07\x01"}, "unknown IDX data type code 0x07"),
        ({"cut": 1}, "truncated"),
    ],
)
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_errors_name_file_and_problem(tmp_path, kw, match, gz):
    path = write_idx(tmp_path / "broken-file", np.zeros((3, 2), np.uint8), gz=gz, **kw)
    with pytest.raises(ValueError, match=match) as err:
        ds.read_idx(path)
    assert "broken-file" in str(err.value)


def test_read_idx_truncated_header(tmp_path):
    path = tmp_path / "short"
    path.write_bytes(b"\x00\x00\x08\x03\x00\x00\x00\x02")
    with pytest.raises(ValueError, match="truncated IDX header"):
        ds.read_idx(path)


def test_read_idx_extra_bytes(tmp_path):
    path = write_idx(tmp_path / "long", np.zeros(3, np.uint8))
    path.write_bytes(path.read_bytes() + b"\x00\x00")
    with pytest.raises(ValueError, match="2 unexpected bytes"):
        ds.read_idx(path)


def test_read_idx_corrupt_gzip(tmp_path):
    path = tmp_path / "bad.gz"
    path.write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x05abcde")[:-6])
    with pytest.raises(ValueError, match="bad.gz.*gzip"):
        ds.read_idx(path)


def test_load_mnist_count_mismatch(tmp_path):
    write_mnist(tmp_path, m=5, n_labels=4)
    with pytest.raises(ValueError, match="5 images.*4 labels"):
        ds.load_mnist(tmp_path)


def test_load_mnist_missing_files_lists_paths_tried(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        ds.load_mnist(tmp_path)
    message = str(err.value)
    assert "train-images-idx3-ubyte" in message and "train-images-idx3-ubyte.gz" in message


def test_load_mnist_bad_kind(tmp_path):
    with pytest.raises(ValueError, match="kind"):
        ds.load_mnist(tmp_path, kind="validation")


# --------------------------------------------------------------------------- memory-mapped files


@pytest.mark.parametrize(
    ("code", "values"),
    [(0x08, [[0, 255], [7, 128]]), (0x0B, [[-30000, 2], [3, 30000]]),
     (0x0D, [[0.5, -1.25], [3.0, 1e30]]), (0x0E, [[0.1, -1e-300], [np.pi, 1e300]])],
)
def test_read_idx_mmap_maps_the_file(tmp_path, code, values):
    path = write_idx(tmp_path / "data.idx", values, code)
    out = ds.read_idx(path, mmap_mode="r")
    assert isinstance(out, np.memmap) and str(out.filename) == str(path.resolve())
    assert out.shape == (2, 2) and out.offset == 4 + 4 * 2
    np.testing.assert_array_equal(out, np.asarray(values, dtype=out.dtype))
    with pytest.raises(ValueError, match="read-only"):
        out[0, 0] = 1


def test_read_idx_mmap_copy_on_write_leaves_file_alone(tmp_path):
    path = write_idx(tmp_path / "data.idx", [[1, 2], [3, 4]])
    before = path.read_bytes()
    out = ds.read_idx(path, mmap_mode="c")
    out[0, 0] = 9
    assert out[0, 0] == 9 and path.read_bytes() == before


def test_read_idx_mmap_refuses_gzip_and_says_why(tmp_path):
    path = write_idx(tmp_path / "data.idx.gz", [[1, 2]], gz=True)
    with pytest.raises(ValueError, match="data.idx.gz is gzip-compressed.*cannot be memory-mapped"):
        ds.read_idx(path, mmap_mode="r")


@pytest.mark.parametrize(
    ("kw", "match"),
    [({"magic": b"\x01\x02\x08\x02"}, "bad magic"), ({"cut": 1}, "truncated data")],
)
def test_read_idx_mmap_checks_the_header(tmp_path, kw, match):
    path = write_idx(tmp_path / "broken-file", np.zeros((3, 2), np.uint8), **kw)
    with pytest.raises(ValueError, match=match):
        ds.read_idx(path, mmap_mode="r")


@pytest.mark.parametrize("mode", ["w+", "rb", True])
def test_read_idx_bad_mmap_mode(tmp_path, mode):
    path = write_idx(tmp_path / "data.idx", [1, 2])
    with pytest.raises(ValueError, match="mmap_mode"):
        ds.read_idx(path, mmap_mode=mode)


def test_load_mnist_mmap_gives_raw_pixels_and_labels(tmp_path):
    images, labels = write_mnist(tmp_path, m=5, rows=3, cols=4)
    # gzip labels next to plain images: only the images are mapped
    write_idx(tmp_path / "train-labels-idx1-ubyte", labels, gz=True)
    X, y = ds.load_mnist(tmp_path, mmap_mode="r")
    assert isinstance(X, np.memmap) and X.dtype == np.uint8 and X.shape == (5, 12)
    np.testing.assert_array_equal(X, images.reshape(5, 12))
    assert y.dtype == np.int64 and y.tolist() == labels.tolist()


def test_load_mnist_mmap_of_gzip_images_says_to_decompress(tmp_path):
    write_mnist(tmp_path, gz=True)
    with pytest.raises(ValueError, match="gunzip"):
        ds.load_mnist(tmp_path, mmap_mode="r")


def test_write_npy_scales_in_chunks_and_maps_the_result(tmp_path):
    images, _ = write_mnist(tmp_path, m=7, rows=3, cols=4)
    X, _ = ds.load_mnist(tmp_path, mmap_mode="r")
    out = ds.write_npy(tmp_path / "x.npy", X, dtype="float32", scale=1 / 255, chunk_rows=3)
    assert isinstance(out, np.memmap) and out.dtype == np.float32 and out.shape == (7, 12)
    np.testing.assert_allclose(out, images.reshape(7, 12) / 255.0, rtol=1e-6)
    again = ds.load_npy(tmp_path / "x.npy")
    assert isinstance(again, np.memmap)
    np.testing.assert_array_equal(again, out)
    assert not list(tmp_path.glob(".x.npy*"))  # no temporary file left behind


def test_write_npy_keeps_dtype_without_scale(tmp_path):
    X = np.arange(12, dtype=np.int16).reshape(4, 3)
    out = ds.write_npy(tmp_path / "x.npy", X)
    assert out.dtype == np.int16
    np.testing.assert_array_equal(out, X)
    with pytest.raises(ValueError, match="scale needs a floating dtype"):
        ds.write_npy(tmp_path / "y.npy", X, scale=0.5)


def test_load_npy_in_memory_and_errors(tmp_path):
    X = np.arange(6.0).reshape(2, 3)
    np.save(tmp_path / "x.npy", X)
    inside = ds.load_npy(tmp_path / "x.npy", mmap_mode=None)
    assert not isinstance(inside, np.memmap)
    np.testing.assert_array_equal(inside, X)
    with pytest.raises(FileNotFoundError, match="missing.npy"):
        ds.load_npy(tmp_path / "missing.npy")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="obj.npy"):
        ds.load_npy(tmp_path / "obj.npy")
    np.savez(tmp_path / "two.npz", a=X, b=X)
    with pytest.raises(ValueError, match="npz archive"):
        ds.load_npy(tmp_path / "two.npz")
    np.save(tmp_path / "s.npy", np.array(["a", "b"]))
    with pytest.raises(ValueError, match="expected numbers"):
        ds.load_npy(tmp_path / "s.npy")


# --------------------------------------------------------------------------- CSV


def test_csv_without_header_integer_labels(tmp_path):
    path = write_text(tmp_path / "d.csv", "1,2,0\n3.5,-4,2\n\n5,6e1,1\n")
    X, y, classes = ds.load_csv(path)
    assert_xy(X, y, 3, 2)
    np.testing.assert_array_equal(X, [[1, 2], [3.5, -4], [5, 60]])
    assert y.tolist() == [0, 2, 1]
    assert classes.tolist() == [0, 1, 2] and classes.dtype == np.int64


def test_csv_with_header_and_label_name(tmp_path):
    text = "species,len,width\nsetosa,1.0,2.0\nvirginica,3,4\nsetosa,5,6\nversicolor,7,8\n"
    path = write_text(tmp_path / "iris.csv", text)
    X, y, classes = ds.load_csv(path, label_column="species")
    np.testing.assert_array_equal(X, [[1, 2], [3, 4], [5, 6], [7, 8]])
    assert classes.tolist() == ["setosa", "versicolor", "virginica"]
    assert y.tolist() == [0, 2, 0, 1]
    np.testing.assert_array_equal(classes[y], ["setosa", "virginica", "setosa", "versicolor"])


def test_csv_header_is_inferred_with_string_labels_in_data(tmp_path):
    # string labels in the first data row must not make it look like a header
    path = write_text(tmp_path / "d.csv", "1,2,cat\n3,4,dog\n")
    X, y, classes = ds.load_csv(path)
    assert X.shape == (2, 2) and classes.tolist() == ["cat", "dog"]
    path = write_text(tmp_path / "h.csv", "a,b,label\n1,2,cat\n3,4,dog\n")
    X, _, _ = ds.load_csv(path)
    assert X.shape == (2, 2)


def test_csv_numeric_labels_mapped_in_numeric_order(tmp_path):
    path = write_text(tmp_path / "d.csv", "1,10\n2,9\n3,-1\n4,10\n")
    _, y, classes = ds.load_csv(path)
    assert classes.tolist() == [-1, 9, 10]
    assert y.tolist() == [2, 1, 0, 2]


def test_csv_label_column_index_and_delimiter(tmp_path):
    path = write_text(tmp_path / "d.tsv", "1\t0.5\t7\n0\t1.5\t8\n")
    X, y, classes = ds.load_csv(path, label_column=0, header=False, delimiter="\t")
    np.testing.assert_array_equal(X, [[0.5, 7], [1.5, 8]])
    assert y.tolist() == [1, 0] and classes.tolist() == [0, 1]


def test_csv_non_numeric_cell_names_line_and_column(tmp_path):
    path = write_text(tmp_path / "d.csv", "a,b,label\n1,2,0\n3,oops,1\n")
    with pytest.raises(ValueError, match=r"line 3, column 2 \('b'\): 'oops' is not a number"):
        ds.load_csv(path)


def test_csv_ragged_row(tmp_path):
    path = write_text(tmp_path / "d.csv", "1,2,0\n3,4,1\n5,1\n")
    with pytest.raises(ValueError, match="line 3 has 2 fields, expected 3"):
        ds.load_csv(path)


@pytest.mark.parametrize("text", ["", "\n\n"])
def test_csv_empty_file(tmp_path, text):
    path = write_text(tmp_path / "empty.csv", text)
    with pytest.raises(ValueError, match="empty.csv: empty file"):
        ds.load_csv(path)


def test_csv_header_only(tmp_path):
    path = write_text(tmp_path / "d.csv", "a,b,label\n")
    with pytest.raises(ValueError, match="no data rows"):
        ds.load_csv(path)


def test_csv_unknown_label_name_lists_columns(tmp_path):
    path = write_text(tmp_path / "d.csv", "a,b,label\n1,2,0\n")
    with pytest.raises(ValueError, match=r"'target' is not a column.*'label'"):
        ds.load_csv(path, label_column="target")


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"label_column": 3}, "out of range"),
        ({"label_column": "c", "header": False}, "no header"),
        ({"header": "yes"}, "header must be"),
    ],
)
def test_csv_bad_options(tmp_path, kw, match):
    path = write_text(tmp_path / "d.csv", "1,2,0\n")
    with pytest.raises(ValueError, match=match):
        ds.load_csv(path, **kw)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("1,2x,0\n3,4,1\n", r"line 1, column 2: '2x' is not a number"),  # a typo, not a header
        ("x,2,label\n3,4,1\n", r"line 1, column 1: 'x' is not a number"),
        ("a,b,label\n1,2,0\n3,,1\n", r"line 3, column 2 \('b'\): '' is not a number"),
        ("1,2,0\n3,inf,1\n", r"line 2, column 2: 'inf' is not a number"),
    ],
)
def test_csv_header_only_when_no_cell_of_the_first_row_is_a_number(tmp_path, text, match):
    path = write_text(tmp_path / "d.csv", text)
    with pytest.raises(ValueError, match=f"d.csv: {match}"):
        ds.load_csv(path)


def test_csv_header_of_names_and_utf8_bom(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes("\ufeffa,b,label\n1,2,0\n3,4,1\n".encode())
    X, y, _ = ds.load_csv(path)
    np.testing.assert_array_equal(X, [[1, 2], [3, 4]])
    X, y, _ = ds.load_csv(path, label_column="label")
    assert y.tolist() == [0, 1]


def test_csv_field_over_the_csv_limit_is_a_clear_error(tmp_path):
    import csv

    path = write_text(tmp_path / "long.csv", "1,2,0\n1," + "9" * (csv.field_size_limit() + 1)
                      + ",0\n")
    with pytest.raises(ValueError, match=r"long.csv: line 2: a field is longer than 131072 "
                                         r"characters \(Python's csv limit\)") as err:
        ds.load_csv(path)
    assert not isinstance(err.value, csv.Error)


def test_csv_unterminated_quote_names_the_line(tmp_path):
    path = write_text(tmp_path / "q.csv", '1,2,0\n3,"4,1\n5,6,1\n')
    with pytest.raises(ValueError, match=r"q.csv: line 3: unexpected end of data"):
        ds.load_csv(path)


@pytest.mark.parametrize(
    ("blob", "where"),
    [
        (b"1,2,0\n3,\xe94,1\n", "line 2, column 2: byte 0xe9"),  # Latin-1
        ("caf\u00e9,b,label\n1,2,0\n".encode("latin-1"), "line 1, column 1: byte 0xe9"),
        ("a,b\n1,2\n".encode("utf-16"), "line 1, column 1: byte 0xff"),
    ],
)
def test_csv_not_utf8_names_file_line_and_column(tmp_path, blob, where):
    path = tmp_path / "latin.csv"
    path.write_bytes(blob)
    with pytest.raises(ValueError, match=f"latin.csv: {where} is not UTF-8 text"):
        ds.load_csv(path)


def test_csv_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        ds.load_csv(tmp_path / "nope.csv")


def test_csv_features_with_and_without_labels(tmp_path):
    path = write_text(tmp_path / "p.csv", "a,b\n1,2\n\n3.5,-4\n")
    X, labels = ds.load_csv_features(path, 2)
    assert X.dtype == np.float64 and X.tolist() == [[1.0, 2.0], [3.5, -4.0]]
    assert labels is None
    path = write_text(tmp_path / "l.csv", "1,2,1\n3,4,0\n")
    X, labels = ds.load_csv_features(path, 2)
    assert X.shape == (2, 2) and labels.dtype == np.int64 and labels.tolist() == [1, 0]
    path = write_text(tmp_path / "f.csv", "1,2,0.5\n3,4,x\n")
    # The label values as written (a model maps them through its classes, never by index).
    assert ds.load_csv_features(path, 2)[1].tolist() == ["0.5", "x"]
    path = write_text(tmp_path / "g.csv", "1,2,0.5\n3,4,-2\n")
    assert ds.load_csv_features(path, 2)[1].tolist() == [0.5, -2.0]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("a,b\n", "no data rows"),
        ("1,2,3,4\n", "has 4 columns; the model takes 2 features"),
        ("1,2\n3,4,5\n", "line 2 has 3 fields, expected 2"),
        ("1,2\n3,oops\n", r"line 2, column 2: 'oops' is not a number"),
        ("1,2\n3,nan\n", r"line 2, column 2: 'nan' is not a number"),
    ],
)
def test_csv_features_errors(tmp_path, text, match):
    path = write_text(tmp_path / "bad.csv", text)
    with pytest.raises(ValueError, match=f"bad.csv:? .*{match}"):
        ds.load_csv_features(path, 2)


# --------------------------------------------------------------------------- helpers


def test_train_test_split_partitions_rows():
    X = np.arange(40, dtype=np.float64).reshape(20, 2)
    y = np.arange(20)
    X_tr, X_te, y_tr, y_te = ds.train_test_split(X, y, test_size=0.25, seed=1)
    assert X_tr.shape == (15, 2) and X_te.shape == (5, 2)
    assert sorted(np.concatenate([y_tr, y_te]).tolist()) == list(range(20))
    np.testing.assert_array_equal(X_tr[:, 0], 2 * y_tr)  # rows stay paired with labels
    np.testing.assert_array_equal(X_te[:, 0], 2 * y_te)
    again = ds.train_test_split(X, y, test_size=0.25, seed=1)
    np.testing.assert_array_equal(again[3], y_te)
    other = ds.train_test_split(X, y, test_size=0.25, seed=2)
    assert not np.array_equal(other[3], y_te)


@pytest.mark.parametrize(("test_size", "n_test"), [(3, 3), (0.25, 3), (0.5, 5), (0.01, 1)])
def test_train_test_split_sizes(test_size, n_test):
    # a fraction gives ceil(test_size * m) test rows, an integer gives exactly that many
    X_tr, X_te, _, _ = ds.train_test_split(np.zeros((10, 1)), np.zeros(10), test_size=test_size)
    assert X_te.shape == (n_test, 1) and X_tr.shape == (10 - n_test, 1)


@pytest.mark.parametrize("seed", range(5))
def test_stratified_split_keeps_class_proportions(seed):
    y = np.repeat([0, 1, 2], [60, 30, 10])
    X = np.arange(100.0)[:, None]
    X_tr, X_te, y_tr, y_te = ds.train_test_split(X, y, test_size=0.2, seed=seed, stratify=True)
    assert np.bincount(y_te).tolist() == [12, 6, 2]
    assert np.bincount(y_tr).tolist() == [48, 24, 8]
    np.testing.assert_array_equal(y[X_te[:, 0].astype(int)], y_te)  # rows stay paired
    assert not np.array_equal(y_te, np.sort(y_te))  # shuffled, not grouped by class


@pytest.mark.parametrize("seed", range(5))
def test_stratified_split_exact_total_with_remainders(seed):
    y = np.repeat([0, 1, 2], [7, 7, 7])
    X = np.zeros((21, 1))
    _, _, _, y_te = ds.train_test_split(X, y, test_size=10, seed=seed, stratify=True)
    assert len(y_te) == 10 and sorted(np.bincount(y_te).tolist()) == [3, 3, 4]


@pytest.mark.parametrize(
    ("args", "kw", "match"),
    [
        ((np.zeros((4, 1)), np.zeros(3)), {}, "same number of rows"),
        ((np.zeros((4, 1)), np.zeros(4)), {"test_size": 1.5}, "test_size"),
        ((np.zeros((4, 1)), np.zeros(4)), {"test_size": 4}, "empty train"),
    ],
)
def test_train_test_split_errors(args, kw, match):
    with pytest.raises(ValueError, match=match):
        ds.train_test_split(*args, **kw)


def test_standardize():
    X_train = np.array([[1.0, 5.0, 0.1], [3.0, 5.0, 0.1], [5.0, 5.0, 0.1]])
    X_test = np.array([[3.0, 6.0, 0.1]])
    Xs, Xt, scaler = ds.standardize(X_train, X_test)
    np.testing.assert_allclose(Xs.mean(axis=0), 0.0, atol=1e-15)
    np.testing.assert_allclose(Xs.std(axis=0), [1.0, 0.0, 0.0])  # constant columns -> 0, not nan
    np.testing.assert_allclose(scaler.std, [np.sqrt(8 / 3), 1.0, 1.0])
    np.testing.assert_allclose(Xt, [[0.0, 1.0, 0.0]], atol=1e-12)
    np.testing.assert_allclose(scaler.inverse_transform(Xt), X_test)
    assert ds.standardize(X_train)[1] is None


def test_standardizer_feature_count_mismatch():
    scaler = ds.Standardizer.fit(np.ones((3, 2)))
    with pytest.raises(ValueError, match="3 features.*fit on 2"):
        scaler.transform(np.ones((1, 3)))


def test_one_hot():
    out = ds.one_hot(np.array([2, 0, 1, 2]))
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, np.eye(3)[[2, 0, 1, 2]])
    assert ds.one_hot([1], n_classes=4).tolist() == [[0.0, 1.0, 0.0, 0.0]]


@pytest.mark.parametrize(
    ("y", "n", "match"),
    [([0, 3], 3, "out of range"), ([-1, 0], None, ">= 0"), ([0.5], None, "whole-number")],
)
def test_one_hot_errors(y, n, match):
    with pytest.raises(ValueError, match=match):
        ds.one_hot(y, n)


# --------------------------------------------------------------------------- registry


def test_get_builtin_names_pass_keywords():
    X, y = ds.get("spiral", n_per_class=10, n_classes=4)
    assert_xy(X, y, 40, 2)
    X, y = ds.get("moons", n_samples=30)
    assert_xy(X, y, 30, 2)


def test_get_csv_and_idx(tmp_path):
    path = write_text(tmp_path / "d.csv", "x,label\n1,b\n2,a\n")
    X, y = ds.get(f"csv:{path}", label_column="label")
    assert X.tolist() == [[1.0], [2.0]] and y.tolist() == [1, 0]
    write_mnist(tmp_path, m=4)
    X, y = ds.get(f"idx:{tmp_path}")
    assert_xy(X, y, 4, 12)


def test_get_unknown_name_lists_known():
    with pytest.raises(ValueError, match="unknown dataset 'mnist'.*spiral.*csv:PATH.*idx:DIR"):
        ds.get("mnist")
