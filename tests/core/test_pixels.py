import numpy as np
import pytest

from core.pixels import BONE, LUNG, MEDIASTINUM, Window, apply_window, reinterpret_sign, to_gray, to_hu


def test_to_hu_applies_slope_and_intercept():
    stored = np.array([[0, 1024], [2048, 4095]], dtype=np.uint16)
    hu = to_hu(stored, 1.0, -1024.0)
    assert hu.dtype == np.float32
    np.testing.assert_array_equal(hu, [[-1024, 0], [1024, 3071]])
    np.testing.assert_allclose(to_hu(np.array([10], np.int16), 2.5, 5.0), [30.0])


def test_to_hu_writes_in_place():
    out = np.zeros((2, 2), np.float32)
    res = to_hu(np.ones((2, 2), np.int16), 1.0, -1000.0, out=out)
    assert res is out and np.all(out == -999)


def test_reinterpret_sign_extends_12_bit_values_stored_unsigned():
    # -1 and -2048 in 12-bit two's complement, decoded as unsigned 16-bit by a buggy writer
    raw = np.array([0x0FFF, 0x0800, 0x07FF, 0], dtype=np.uint16)
    np.testing.assert_array_equal(reinterpret_sign(raw, 12, signed=True), [-1, -2048, 2047, 0])


def test_reinterpret_sign_unsigned_view_of_signed_bytes():
    raw = np.array([-1, 5], dtype=np.int16)
    np.testing.assert_array_equal(reinterpret_sign(raw, 16, signed=False), [65535, 5])


def test_presets_match_the_radiology_conventions():
    assert (LUNG.width, LUNG.level) == (1500, -600)
    assert (MEDIASTINUM.width, MEDIASTINUM.level) == (350, 40)
    assert (BONE.width, BONE.level) == (2000, 300)


def test_apply_window_is_linear_and_clipped():
    hu = np.array([-1350.0, -600.0, 150.0, 2000.0, -3000.0])
    np.testing.assert_allclose(apply_window(hu, LUNG), [0.0, 0.5, 1.0, 1.0, 0.0], atol=1e-6)
    assert apply_window(hu, Window(100, 0)).dtype == np.float32


@pytest.mark.parametrize("channels", [3, 4])
def test_to_gray_uses_luma_and_drops_alpha(channels):
    img = np.zeros((2, 2, channels), np.uint8)
    img[..., 0] = 255
    if channels == 4:
        img[..., 3] = 7
    np.testing.assert_allclose(to_gray(img), 0.299 * 255, rtol=1e-6)


def test_to_gray_rejects_wrong_shapes():
    with pytest.raises(ValueError):
        to_gray(np.zeros((4, 4, 5)))
