"""The DART algorithm: probe (step adaptability), cut (imitation gap), explore, and the pipeline."""
