"""Coverage-guided fuzzing of the exchange adapters' parsers (``python -m fuzz``); see fuzz/README.md."""
