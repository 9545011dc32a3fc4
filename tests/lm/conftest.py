"""LM tests: one torch thread (two cores shared by many jobs: threads collapse under load)."""

import torch

torch.set_num_threads(1)
