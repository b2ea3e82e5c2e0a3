"""Label makers for training: SUR proxies from IQA metrics (and SMR from the machine zoo).

Labels computed here are PROXIES of the subjective satisfied-user ratio, not
measurements: :mod:`training.labels.pseudo_sur` is the paper's relative
Eq. 3 ensemble, :mod:`training.labels.jnd_proxy` an absolute proxy from
JND-calibrated metrics and a simulated observer population.
"""
