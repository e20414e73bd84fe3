"""A two-component 1-D Gaussian mixture fitted by EM in torch, on the device
of its input (TA-DFKD's and DivideMix's clean/noisy split of per-sample
losses, without a round trip to scikit-learn on the CPU)."""
import math

import torch


class GaussianMixture1D:
    """Two-component Gaussian mixture over scalars, fitted by EM like
    scikit-learn's ``GaussianMixture(n_components=2, init_params='kmeans')``
    on a column vector::

        p(x) = sum_k pi_k N(x | mu_k, var_k),    k in {0, 1}

        init:   hard responsibilities of the 2-means partition of x
        M-step: n_k = sum_i r_ik,  pi_k = n_k / N,  mu_k = sum_i r_ik x_i / n_k,
                var_k = sum_i r_ik (x_i - mu_k)^2 / n_k + reg_covar
        E-step: r_ik = pi_k N(x_i | mu_k, var_k) / p(x_i)
        stop:   after ``max_iter`` E+M rounds, or when the mean
                log-likelihood changes by less than ``tol``

    The initial partition is the exact optimum of 1-D 2-means (the split of
    the sorted values with the smallest within-cluster sum of squares),
    which scikit-learn's k-means++ + Lloyd reaches on any sample with two
    clear groups; it needs no random numbers. Component 0 starts as the
    lower group. Computations run in float64 on the input's device.

    DivideMix (Li et al., ICLR 2020) and TA-DFKD (Shin & Choi, AAAI 2024)
    fit it with ``max_iter=10, tol=1e-2, reg_covar=5e-4`` to min-max
    normalised losses; the low-mean component holds the "clean" samples.

    Args:
        max_iter (int): Maximum EM rounds. Defaults to 10.
        tol (float): Convergence threshold on the change of the mean
            log-likelihood. Defaults to 1e-2.
        reg_covar (float): Added to both variances. Defaults to 5e-4.

    Attributes (after :meth:`fit`):
        weights_, means_, variances_ (Tensor): shape (2,).
        converged_ (bool), n_iter_ (int), lower_bound_ (float): as in
            scikit-learn.
    """

    def __init__(self,
                 max_iter: int = 10,
                 tol: float = 1e-2,
                 reg_covar: float = 5e-4) -> None:
        if not isinstance(max_iter, int) or max_iter < 1:
            raise ValueError(f'max_iter must be a positive int, got '
                             f'{max_iter!r}')
        if tol < 0 or reg_covar < 0:
            raise ValueError(f'tol and reg_covar must be >= 0, got '
                             f'tol={tol}, reg_covar={reg_covar}')
        self.max_iter = max_iter
        self.tol = tol
        self.reg_covar = reg_covar
        self.weights_: torch.Tensor | None = None
        self.means_: torch.Tensor | None = None
        self.variances_: torch.Tensor | None = None
        self.converged_ = False
        self.n_iter_ = 0
        self.lower_bound_ = -math.inf

    # ------------------------------------------------------------ fitting
    @staticmethod
    def _as_column(x: torch.Tensor) -> torch.Tensor:
        x = torch.as_tensor(x).detach().reshape(-1)
        # MPS has no float64; every other backend fits in double precision
        dtype = torch.float32 if x.device.type == 'mps' else torch.float64
        return x.to(dtype)

    @staticmethod
    def two_means_split(x: torch.Tensor) -> torch.Tensor:
        """Responsibilities (N, 2) of the optimal 1-D 2-means partition:
        column 0 marks the lower group."""
        values, _ = torch.sort(x)
        n = values.numel()
        sizes = torch.arange(1, n, device=x.device, dtype=x.dtype)
        left = torch.cumsum(values, 0)[:-1]
        right = values.sum() - left
        # minimising the within-cluster SSE = maximising this score
        score = left**2 / sizes + right**2 / (n - sizes)
        # equal values must stay together, as in k-means
        score = score.masked_fill(values[1:] <= values[:-1], -math.inf)
        split = int(torch.argmax(score))
        upper = (x > values[split]).to(x.dtype)
        return torch.stack([1 - upper, upper], dim=1)

    def _m_step(self, x: torch.Tensor, resp: torch.Tensor) -> None:
        eps = 10 * torch.finfo(x.dtype).eps  # scikit-learn's guard on n_k
        nk = resp.sum(0) + eps
        self.means_ = (resp * x[:, None]).sum(0) / nk
        self.variances_ = (resp * (x[:, None] - self.means_)**2).sum(0) / nk \
            + self.reg_covar
        self.weights_ = nk / nk.sum()

    def _weighted_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        log_gauss = -0.5 * (math.log(2 * math.pi) + self.variances_.log() +
                            (x[:, None] - self.means_)**2 / self.variances_)
        return log_gauss + self.weights_.log()

    def _e_step(self, x: torch.Tensor):
        weighted = self._weighted_log_prob(x)
        log_norm = torch.logsumexp(weighted, dim=1)
        return log_norm, weighted - log_norm[:, None]

    def fit(self, x: torch.Tensor) -> 'GaussianMixture1D':
        """Fit to the values of ``x`` (any shape, flattened)."""
        x = self._as_column(x)
        if x.numel() < 2 or not bool((x != x[0]).any()):
            raise ValueError(
                'GaussianMixture1D needs at least two distinct values to '
                f'fit two components; got {x.numel()} value(s), all equal')
        if not bool(torch.isfinite(x).all()):
            raise ValueError('GaussianMixture1D got non-finite values')
        self._m_step(x, self.two_means_split(x))
        lower_bound = -math.inf
        self.converged_ = False
        for n_iter in range(1, self.max_iter + 1):
            previous = lower_bound
            log_norm, log_resp = self._e_step(x)
            self._m_step(x, log_resp.exp())
            lower_bound = float(log_norm.mean())
            if abs(lower_bound - previous) < self.tol:
                self.converged_ = True
                break
        self.n_iter_ = n_iter
        self.lower_bound_ = lower_bound
        return self

    # --------------------------------------------------------- prediction
    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Posterior (N, 2) of each component for the values of ``x``."""
        if self.means_ is None:
            raise RuntimeError('call fit() before predict_proba()')
        return self._e_step(self._as_column(x))[1].exp()

    @property
    def low_mean_component(self) -> int:
        """Index of the component with the smaller mean."""
        if self.means_ is None:
            raise RuntimeError('call fit() first')
        return int(torch.argmin(self.means_))

    def low_mean_posterior(self, x: torch.Tensor) -> torch.Tensor:
        """Fit to ``x`` and return every value's posterior (N,) of the
        low-mean component (the "clean" samples of a loss split)."""
        self.fit(x)
        return self.predict_proba(x)[:, self.low_mean_component]
