"""Where the tests find the repository and the committed fixtures."""
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
FAIRSEQ_FIXTURES = FIXTURES / "fairseq"  # made by fairseq-fixed: scripts/make_fairseq_fixtures.py
CONFIGS = REPO / "configs"
