try:
    import torch
except ImportError:  # the test modules skip themselves
    torch = None

if torch is not None:
    torch.set_num_threads(1)  # much faster for the small nets of these tests
