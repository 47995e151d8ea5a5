"""The benchmark scripts run end to end in their quick modes (tiny sizes; no timing is asserted)."""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def test_training_speed_quick(tmp_path):
    from bench.training_speed import main
    assert main(["--quick", "--out-dir", str(tmp_path)]) == 0
    text = (tmp_path / "training_speed.md").read_text()
    assert "images/s" in text and "Speed-up of ours over the plain loop" in text
