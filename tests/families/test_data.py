"""The data layer: sources, time splits, NaN policy, safety guards, bad data, and preparing once per run."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tkplan.errors import DataError
from tkplan.families import data_digest, prepare, run_step
from tkplan.families._data import build_arrays

from .plans import compile_small, context


def panel(symbols: int = 5, times: int = 60, seed: int = 0) -> pd.DataFrame:
    """A small long-format panel as a user would store it: one row per (symbol, time)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "symbol": np.tile([f"SYM{i}" for i in range(symbols)], times),
        "ts": np.repeat(pd.date_range("2024-01-01", periods=times, freq="5min"), symbols),
        "f0": rng.standard_normal(symbols * times),
        "f1": rng.standard_normal(symbols * times),
        "f2": rng.standard_normal(symbols * times),
        "sector": np.tile(["tech", "energy", "bank", "tech", "bank"][:symbols], times),
    })
    frame["fwd_ret_5m"] = frame["f0"] + 0.5 * rng.standard_normal(len(frame))
    frame["will_peak_5m"] = (frame["fwd_ret_5m"] > 0).astype(int)
    return frame


def file_config(tmp_path: Path, frame: pd.DataFrame, *words: str, suffix: str = ".parquet"):
    """The plan config for ``frame`` saved as a file: small splits, every symbol counts."""
    path = tmp_path / f"panel{suffix}"
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return compile_small(tmp_path, f"data.source={path}", "data.min_cs=1", "data.splits.purge_gap=2",
                         "data.splits.val_ratio=0.2", "data.splits.test_ratio=0.2",
                         "campaign.families=[lightgbm]", "campaign.targets=[fwd_ret_5m]", *words).config


def synthetic_config(tmp_path: Path, *words: str):
    return compile_small(tmp_path, "campaign.families=[lightgbm]", "campaign.targets=[fwd_ret_5m, will_peak_5m]",
                         *words).config


class TestSyntheticPanel:
    def test_same_config_same_arrays(self, tmp_path):
        """The panel is a function of the config: built twice, it is identical; another base seed differs."""
        first, meta = build_arrays(synthetic_config(tmp_path))
        second, _ = build_arrays(synthetic_config(tmp_path))
        other, _ = build_arrays(synthetic_config(tmp_path, "run.base_seed=7"))
        assert first.keys() == second.keys()
        for name in first:
            np.testing.assert_array_equal(first[name], second[name])
        assert not np.array_equal(first["target.fwd_ret_5m"], other["target.fwd_ret_5m"])
        assert meta["rows"] == 12 * 300 and len(meta["feature_names"]) == 12 and meta["cross_sectional"]

    def test_will_peak_is_above_the_cross_sectional_median(self, tmp_path):
        """will_peak_5m marks the symbols above their timestamp's median fwd_ret_5m: half of each timestamp."""
        data = prepare(synthetic_config(tmp_path), tmp_path / "run")
        ret, peak, times = data.targets["fwd_ret_5m"], data.targets["will_peak_5m"], data.times
        for t in (0, 150, 299):
            rows = times == t
            assert peak[rows].mean() == 0.5
            assert ret[rows][peak[rows] == 1].min() > ret[rows][peak[rows] == 0].max()

    def test_max_cs_samples_caps_symbols_per_timestamp(self, tmp_path):
        """data.max_cs_samples keeps at most that many symbols at each timestamp."""
        data = prepare(synthetic_config(tmp_path, "data.max_cs_samples=7", "data.min_cs=5"), tmp_path / "run")
        assert np.bincount(data.times).max() == 7


class TestSplits:
    def test_splits_follow_time_with_a_purge_gap(self, tmp_path):
        """Train, then purge_gap dropped timestamps, then val, another gap, then test: 300 → 176 | 45 | 45."""
        data = prepare(synthetic_config(tmp_path), tmp_path / "run")
        times = {s: np.unique(data.times[data.splits[s]]) for s in ("train", "val", "test")}
        assert [len(times[s]) for s in ("train", "val", "test")] == [176, 45, 45]
        assert times["val"][0] - times["train"][-1] == 17 + 1
        assert times["test"][0] - times["val"][-1] == 17 + 1
        assert times["test"][-1] == 299
        assert data.meta["splits"]["test"] == {"rows": 45 * 12, "first_time": "255", "last_time": "299"}

    def test_max_samples_per_symbol_keeps_the_latest_train_rows(self, tmp_path):
        """data.max_samples_per_symbol caps each symbol's train rows to its latest ones; val/test keep all."""
        data = prepare(synthetic_config(tmp_path, "data.max_samples_per_symbol=20"), tmp_path / "run")
        train = data.splits["train"]
        assert np.bincount(data.symbols[train]).tolist() == [20] * 12
        assert np.unique(data.times[train]).tolist() == list(range(156, 176))
        assert len(data.splits["val"]) == 45 * 12

    def test_too_few_timestamps_is_an_error(self, tmp_path):
        """A split that the ratios and the purge gap leave empty is a DataError with the arithmetic."""
        with pytest.raises(DataError, match=r"the train split is empty: 40 timestamps: test 6 .* purge_gap 17"):
            prepare(synthetic_config(tmp_path, "data.synthetic.timestamps=40"), tmp_path / "run")


class TestFiles:
    @pytest.mark.parametrize("suffix", [".parquet", ".csv"])
    def test_reads_columns_by_name(self, tmp_path, suffix):
        """symbol, time and target columns by name; features null = the other numeric columns."""
        config = file_config(tmp_path, panel(), suffix=suffix)
        data = prepare(config, tmp_path / "run")
        assert data.feature_names == ("f0", "f1", "f2")
        assert data.meta["symbol_names"] == ["SYM0", "SYM1", "SYM2", "SYM3", "SYM4"]
        assert data.meta["rows"] == 300 and data.cross_sectional
        assert data.meta["splits"]["train"]["first_time"] == "2024-01-01T00:00:00.000000000"
        frame = panel()
        first = frame[(frame.symbol == "SYM0")].iloc[0]
        np.testing.assert_allclose(data.features[0], first[["f0", "f1", "f2"]].to_numpy(float), rtol=1e-6)

    def test_explicit_feature_list(self, tmp_path):
        """data.columns.features picks the columns, in that order."""
        config = file_config(tmp_path, panel(), "data.columns.features=[f2, f0]")
        assert prepare(config, tmp_path / "run").feature_names == ("f2", "f0")

    def test_min_cs_drops_thin_timestamps(self, tmp_path):
        """Timestamps with fewer than data.min_cs symbols are dropped before splitting."""
        frame = panel()
        thin = frame.ts.isin(frame.ts.unique()[::2]) & frame.symbol.isin(["SYM3", "SYM4"])
        config = file_config(tmp_path, frame[~thin], "data.min_cs=4")
        assert prepare(config, tmp_path / "run").meta["timestamps"] == 30

    def test_no_symbol_and_no_time_means_row_order(self, tmp_path):
        """Without symbol and time columns each row is its own timestamp, in file order."""
        frame = panel().drop(columns=["symbol", "ts", "sector"])
        data = prepare(file_config(tmp_path, frame, "data.columns.symbol=null", "data.columns.time=null"),
                       tmp_path / "run")
        assert not data.cross_sectional
        assert data.meta["timestamps"] == 300
        np.testing.assert_array_equal(data.times, np.arange(300))


BAD_DATA = [
    ("missing symbol column", lambda f: f.rename(columns={"symbol": "ticker"}), (),
     r"no symbol column 'symbol' \(data.columns.symbol; columns: ticker, ts, f0"),
    ("missing time column", lambda f: f.rename(columns={"ts": "time"}), (),
     r"no time column 'ts' \(data.columns.time; .*time"),
    ("missing target column", lambda f: f.drop(columns=["fwd_ret_5m"]), (),
     r"no target column 'fwd_ret_5m' \(campaign.targets"),
    ("misspelt feature", lambda f: f, ("data.columns.features=[f0, f_1]",),
     r"no feature column 'f_1' .*did you mean 'f1'\?"),
    ("text feature", lambda f: f, ("data.columns.features=[f0, sector]",),
     r"feature column 'sector' has dtype object and non-numeric values such as 'tech'"),
    ("a target listed as a feature", lambda f: f, ("data.columns.features=[f0, will_peak_5m]",),
     r"'will_peak_5m' in data.columns.features is a target \(campaign.targets or data.tasks\); a target is never a "
     "feature"),
    ("a leaking feature", lambda f: f.assign(f1=f.fwd_ret_5m * 3), (),
     r"feature 'f1' has correlation \+1.0000 with target 'fwd_ret_5m' on the train split, beyond "
     r"data.leakage_max_abs_corr = 0.98"),
    ("text target", lambda f: f.assign(fwd_ret_5m="up"), (),
     r"target column 'fwd_ret_5m' has dtype object"),
    ("all-NaN target", lambda f: f.assign(fwd_ret_5m=np.nan), (),
     r"target 'fwd_ret_5m' has no value in any row"),
    ("binary target not 0/1", lambda f: f.assign(will_peak_5m=f.will_peak_5m * 2), ("campaign.targets=[will_peak_5m]",),
     r"binary target 'will_peak_5m' holds 2; a binary target must be 0 or 1"),
    ("NaN target under error", lambda f: f.assign(fwd_ret_5m=f.fwd_ret_5m.where(f.index % 10 > 0)),
     ("data.nan.target=error",), r"target 'fwd_ret_5m' is missing in 30 of 300 rows and data.nan.target is 'error'"),
    ("sparse features", lambda f: f.assign(f1=f.f1.where(f.index % 2 > 0), f2=f.f2.where(f.index % 4 > 0)), (),
     r"2 feature column\(s\) miss more than data.nan.max_feature_nan_ratio = 0.1 of their values: "
     r"f1 \(50.0%\), f2 \(25.0%\)"),
    ("duplicate rows", lambda f: pd.concat([f, f.iloc[:3]]), (),
     r"3 duplicate \(symbol, time\) row\(s\), e.g. symbol SYM0 at time 2024-01-01"),
    ("unparseable time", lambda f: f.assign(ts="soon"), (), r"time column 'ts' \(dtype object\) is neither numeric"),
    ("no rows", lambda f: f.iloc[:0], (), r"has no rows"),
]


@pytest.mark.parametrize("mangle, words, message", [c[1:] for c in BAD_DATA], ids=[c[0] for c in BAD_DATA])
def test_bad_data_is_a_clear_error(tmp_path, mangle, words, message):
    """Each kind of bad data is a DataError, raised by prepare, that names the column and what to do."""
    config = file_config(tmp_path, mangle(panel()), *words, suffix=".csv")
    with pytest.raises(DataError, match=message):
        prepare(config, tmp_path / "run")


@pytest.mark.parametrize("source, message", [
    ("builtin:synthetic", r"unknown built-in source 'builtin:synthetic' \(did you mean 'builtin:synthetic_panel'\?\)"),
    ("/nowhere/panel.parquet", r"no file /nowhere/panel.parquet"),
    ("panel.xlsx", r"neither a built-in source nor a .parquet/.csv file"),
])
def test_unusable_source_is_a_clear_error(tmp_path, source, message):
    """Found when the plan is compiled (a missing file cannot be measured) or when the data is prepared."""
    (tmp_path / "panel.xlsx").write_bytes(b"PK")
    with pytest.raises(DataError, match=message):
        config = compile_small(tmp_path, f"data.source={source}", "campaign.families=[lightgbm]",
                               "campaign.targets=[fwd_ret_5m]").config
        prepare(config, tmp_path / "run")


def test_bad_data_fails_before_training(tmp_path, run_dir):
    """run_step raises the DataError before the adapter fits: no model file is written."""
    frame = panel().assign(fwd_ret_5m=np.nan)
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    plan = compile_small(tmp_path, f"data.source={path}", "campaign.families=[lightgbm]",
                         "campaign.targets=[fwd_ret_5m]")
    with pytest.raises(DataError, match="no value in any row"):
        run_step(context(plan, run_dir))
    assert not (run_dir / "steps").exists()


def test_bad_data_from_the_command_line_is_exit_6_before_any_step(tmp_path):
    """`tkplan demo` on bad data stops before any step starts: exit 6, the message, no traceback."""
    path = tmp_path / "bad.csv"
    panel().assign(fwd_ret_5m=np.nan).to_csv(path, index=False)
    done = subprocess.run([sys.executable, "-m", "tkplan.cli", "demo", "--out", "run", "-q", f"data.source={path}",
                           "data.min_cs=1", "data.splits.purge_gap=2", "campaign.families=[lightgbm]",
                           "campaign.targets=[fwd_ret_5m]"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 6, done.stdout + done.stderr
    assert "target 'fwd_ret_5m' has no value in any row" in done.stderr
    assert "Traceback" not in done.stderr
    assert not list((tmp_path / "run" / "steps").glob("*/outcome.json"))


class TestNanPolicy:
    def missing_f1(self) -> pd.DataFrame:
        frame = panel()
        return frame.assign(f1=frame.f1.where(frame.index % 20 > 0))

    def test_impute_median_uses_the_train_split(self, tmp_path):
        """Missing features become the train split's median, in every split."""
        frame = self.missing_f1()
        data = prepare(file_config(tmp_path, frame), tmp_path / "run")
        train = data.splits["train"]
        median = np.median(frame.f1.to_numpy()[train][~np.isnan(frame.f1.to_numpy()[train])])
        np.testing.assert_allclose(data.features[::20, 1], median, rtol=1e-6)
        assert not data.meta["feature_nan"]

    def test_drop_rows(self, tmp_path):
        """data.nan.features: drop_rows drops each row with a missing feature."""
        data = prepare(file_config(tmp_path, self.missing_f1(), "data.nan.features=drop_rows"), tmp_path / "run")
        assert data.meta["rows"] == 285

    def test_target_drop_rows(self, tmp_path):
        """Rows whose target is missing are dropped under the default data.nan.target: drop_rows."""
        frame = panel()
        frame = frame.assign(fwd_ret_5m=frame.fwd_ret_5m.where(frame.index % 10 > 0))
        assert prepare(file_config(tmp_path, frame), tmp_path / "run").meta["rows"] == 270

    def test_keep_refused_by_a_family_without_nan_support(self, tmp_path, run_dir):
        """data.nan.features: keep leaves NaN, which a nan_ok: false family refuses before fitting."""
        frame = self.missing_f1()
        path = tmp_path / "nan.parquet"
        frame.to_parquet(path)
        plan = compile_small(tmp_path, f"data.source={path}", "data.min_cs=1", "data.splits.purge_gap=2",
                             "data.nan.features=keep", "campaign.families=[ftrl_proximal]",
                             "campaign.targets=[fwd_ret_5m]")
        with pytest.raises(DataError,
                           match=r"ftrl_proximal cannot take missing feature values \(runtime.nan_ok: false\)"):
            run_step(context(plan, run_dir))

    def test_keep_is_fine_for_lightgbm(self, tmp_path, run_dir):
        """LightGBM (nan_ok: true) trains on features with NaN left in."""
        path = tmp_path / "nan.parquet"
        self.missing_f1().to_parquet(path)
        plan = compile_small(tmp_path, f"data.source={path}", "data.min_cs=1", "data.splits.purge_gap=2",
                             "data.nan.features=keep", "campaign.families=[lightgbm]", "campaign.targets=[fwd_ret_5m]",
                             "families.lightgbm.n_estimators=20", "families.lightgbm.min_data_in_leaf=5")
        assert run_step(context(plan, run_dir))["metrics"]["test"]["r2"] > 0


class TestSafety:
    def test_features_are_clipped(self, tmp_path):
        """Features are clipped to ± data.safety.feature_clip."""
        frame = panel()
        frame.loc[7, "f2"], frame.loc[8, "f2"] = 1e9, -1e9
        data = prepare(file_config(tmp_path, frame, "data.safety.feature_clip=3.5"), tmp_path / "run")
        assert data.features[7, 2] == 3.5 and data.features[8, 2] == -3.5

    def test_regression_targets_are_capped_in_mads(self, tmp_path):
        """A regression target is capped at the train median ± target_cap_mads · MAD; the cap is recorded."""
        frame = panel()
        frame.loc[3, "fwd_ret_5m"] = 1e6
        data = prepare(file_config(tmp_path, frame, "data.safety.target_cap_mads=4"), tmp_path / "run")
        y = frame.fwd_ret_5m.to_numpy()[data.splits["train"]]
        centre = np.median(y)
        high = centre + 4 * np.median(np.abs(y - centre))
        assert data.targets["fwd_ret_5m"][3] == pytest.approx(high)
        assert data.meta["target_caps"]["fwd_ret_5m"][1] == pytest.approx(high)


class TestPreparedOnce:
    def test_second_prepare_loads_memory_maps(self, tmp_path):
        """The first call builds the files; the next loads them memory-mapped and writes nothing."""
        config = synthetic_config(tmp_path)
        first = prepare(config, tmp_path / "run")
        stamp = os.stat(first.directory / "features.npy").st_mtime_ns
        second = prepare(config, tmp_path / "run")
        assert (first.built, second.built) == (True, False)
        assert second.directory == tmp_path / "run" / "data" / data_digest(config)
        assert isinstance(second.features, np.memmap) and second.features.dtype == np.float32
        assert all(isinstance(a, np.memmap) for a in (*second.targets.values(), *second.splits.values()))
        assert os.stat(second.directory / "features.npy").st_mtime_ns == stamp
        np.testing.assert_array_equal(first.features, second.features)

    def test_concurrent_callers_prepare_once(self, tmp_path):
        """Callers that race on one run directory wait on the lock: one builds, the others load."""
        config = synthetic_config(tmp_path)
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda _: prepare(config, tmp_path / "run"), range(4)))
        assert sorted(r.built for r in results) == [False, False, False, True]
        assert [p.name for p in (tmp_path / "run" / "data").iterdir() if p.is_dir()] == [data_digest(config)]

    def test_another_data_section_gets_its_own_directory(self, tmp_path):
        assert (data_digest(synthetic_config(tmp_path))
                != data_digest(synthetic_config(tmp_path, "data.synthetic.noise=2")))


class TestBuiltinDatasets:
    def test_breast_cancer(self, tmp_path):
        """569 rows in file order, 30 features, a 0/1 target, no cross-section; 2 × 17 rows purged."""
        config = compile_small(tmp_path, "data.source=builtin:breast_cancer", "data.tasks.target=binary",
                               "campaign.families=[lightgbm]", "campaign.targets=[target]").config
        data = prepare(config, tmp_path / "run")
        assert len(data.feature_names) == 30 and data.meta["rows"] == 569 and not data.cross_sectional
        assert sorted(np.unique(data.targets["target"])) == [0.0, 1.0]
        assert sum(len(r) for r in data.splits.values()) == 569 - 2 * 17

    def test_diabetes(self, tmp_path):
        config = compile_small(tmp_path, "data.source=builtin:diabetes", "campaign.families=[reward_based]",
                               "campaign.targets=[target]").config
        data = prepare(config, tmp_path / "run")
        assert data.feature_names[:3] == ("age", "sex", "bmi") and data.meta["rows"] == 442

    def test_synthetic_targets_are_not_in_diabetes(self, tmp_path):
        config = compile_small(tmp_path, "data.source=builtin:diabetes", "campaign.families=[lightgbm]",
                               "campaign.targets=[fwd_ret_5m]").config
        with pytest.raises(DataError, match=r"target\(s\) fwd_ret_5m not in builtin:diabetes \(it has: target\)"):
            prepare(config, tmp_path / "run")
