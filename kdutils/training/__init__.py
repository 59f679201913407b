"""Training: the fit loop (`train`), students trained together (`multi_student`, `stacked`, `engines`), one run
from a RunConfig to a record (`runner`) and runs grouped to train together (`group_runner`).
"""
