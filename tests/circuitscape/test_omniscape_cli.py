"""`hwc-risk omniscape` on files made here: outputs, and bad settings stopped cleanly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from tests.conftest import cli, write_raster


def make_case(folder: Path, extra: str = "") -> Path:
    rng = np.random.default_rng(2)
    resistance = rng.uniform(1.0, 5.0, (24, 26)).astype(np.float32)
    resistance[3, 4] = -9999
    write_raster(folder / "res.tif", resistance, nodata=-9999)
    write_raster(folder / "src.tif", rng.uniform(0, 1, (24, 26)).astype(np.float32))
    ini = folder / "run.ini"
    ini.write_text(
        "[Required]\nresistance_file = res.tif\nsource_file = src.tif\nradius = 4\n"
        "block_size = 3\nproject_name = out\n[Options]\ncalc_normalized_current = true\n"
        "calc_flow_potential = true\n" + extra
    )
    return ini


def test_writes_omniscapes_files_beside_the_ini(tmp_path: Path) -> None:
    ini = make_case(tmp_path)
    proc = cli("omniscape", ini, "--workers", "2", "--pool", "threads")
    assert proc.returncode == 0, proc.stderr
    names = {Path(p).name for p in proc.stdout.split()}
    assert names == {
        "cum_currmap.tif",
        "flow_potential.tif",
        "normalized_cum_currmap.tif",
        "config.ini",
    }
    with rasterio.open(tmp_path / "out" / "cum_currmap.tif") as ds:
        current = ds.read(1)
        assert ds.nodata == -9999 and ds.crs is not None
    assert current[3, 4] == -9999  # masked where the resistance has no data
    assert (current[current != -9999] >= 0).all() and current.max() > 0
    again = cli("omniscape", ini, "-q")  # an existing project folder is kept
    assert again.returncode == 0
    assert (tmp_path / "out_1" / "cum_currmap.tif").exists()


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ("conditional = true\ncomparison1 = above\n", "comparison1 = above; use within or equals"),
        ("source_decay = linear\n", "source_decay = linear"),
        ("source_decay = exponential\n", "needs decay_scale > 0"),
        ("block_size = many\n", "block_size = many is not a number"),
        ("reclassify_resistance = true\nreclass_table = none.txt\n", "none.txt: file not found"),
    ],
)
def test_bad_settings_stop_with_one_line(tmp_path: Path, extra: str, needle: str) -> None:
    ini = make_case(tmp_path, extra)
    proc = cli("omniscape", ini)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert needle in proc.stderr
    assert not (tmp_path / "out").exists()  # nothing written
