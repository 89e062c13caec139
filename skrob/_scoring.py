"""What skrob's robustness scorers share."""


class RobustnessScorerMixin:
    """Marks skrob's robustness scorers (distortions, RPR, LO): a scorer whose value is
    about robustness, which :func:`skrob.robustness_learning_curve` scores on the test
    samples every model classifies correctly (paper 002's X). Recognised by ``isinstance``,
    never by class name. Each such scorer uses common random numbers by default: with
    ``random_state=None`` every call draws the same random numbers (seed 0), so scores of
    different models differ only through the models."""
