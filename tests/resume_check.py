"""The exact-resume check every variant's tests make: a run stopped and resumed ends where
the same run made in one go ends, to the last bit of every array and every logged loss."""
import numpy as np


def assert_resume_is_exact(tmp_path, cfg: dict, steps: int, stop: int):
    """Train `cfg` for `steps` steps in one go, and for `stop` steps then resumed to `steps`;
    assert both checkpoints and logs are identical.  Returns (the resumed run's summary, the
    checkpoint's arrays)."""
    from tinygan.train import train
    train(**cfg, steps=steps, out=str(tmp_path / "straight"))
    train(**cfg, steps=stop, out=str(tmp_path / "split"))
    summary = train(**cfg, steps=steps, out=str(tmp_path / "split"), resume=True)

    def arrays(run):
        return dict(np.load(tmp_path / run / "checkpoints" / "last.npz"))

    def log(run):
        return (tmp_path / run / "log.jsonl").read_text()

    a, b = arrays("straight"), arrays("split")
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert log("straight") == log("split")
    return summary, a
