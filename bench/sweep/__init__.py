"""``bench sweep``: the equal-budget hyperparameter study (Lucic et al. 2018, "Are GANs Created
Equal? A Large-Scale Study", arXiv:1711.10337): every variant gets the same number of random
draws from its search space, and results are reported as the expected best score after k draws
(Dodge et al. 2019, arXiv:1909.03004).

The search spaces and their draws are model data and live in ``bench.space``; here are the
study (``run``, ``resume``, ``study``, ``protocol``) and its reporting statistics (``expected_best``).
Kept import-light: nothing here imports optuna or torch until it is used.
"""
