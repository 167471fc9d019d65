"""The names `demo --train` prints for its arms (a module of its own: the report reads them
without importing the training code)."""

LABELS = {
    "no-tuning": "No-Tuning",
    "static": "Static",
    "first": "Adaptation-First",
    "gap": "Adaptation-Gap",
    "full": "Adaptation-Full",
    "rft": "[baseline] RFT",
    "fixed-cut": "[baseline] Fixed cut",
    "random-cut": "[baseline] Random cut",
    "dail": "DAIL (contrastive)",
    "dail-sft": "DAIL rows, SFT",
    "mapper": "Mapper",
}
