"""Cost functions: names, integer codes for the kernels, valid pairings.

Both costs are means over the batch of a per-sample cost C_n:

``"quadratic"``
    C_n = ½‖a^L − y‖², valid with every output activation.
``"cross_entropy"``
    Binary per unit for a sigmoid output,
    C_n = −Σ_j [y_j log a_j + (1 − y_j) log(1 − a_j)], evaluated from the
    logits as Σ_j max(z_j, 0) − z_j y_j + log1p(exp(−|z_j|));
    categorical for a softmax output, C_n = −Σ_j y_j log a_j, evaluated as
    Σ_j y_j (logsumexp(z) − z_j).  Other outputs do not produce
    probabilities, so the pairing is rejected.

The output error δ^L = ∂C_n/∂z^L follows the general chain rule
(∂C_n/∂a^L ⊙ f'(z^L), or the softmax Jacobian applied to ∂C_n/∂a^L) except for
the two cross-entropy pairs, where it fuses to the stable a^L − y
(a^L Σ_j y_j − y for softmax, which is a^L − y for targets that sum to one).
"""

from __future__ import annotations

from . import activations as act

QUADRATIC = 0
CROSS_ENTROPY = 1

CODES: dict[str, int] = {"quadratic": QUADRATIC, "cross_entropy": CROSS_ENTROPY}

#: Output activations each loss accepts.
VALID_OUTPUTS: dict[int, tuple[str, ...]] = {
    QUADRATIC: tuple(act.CODES),
    CROSS_ENTROPY: ("sigmoid", "softmax"),
}


def code_of(name: object, output_code: int) -> int:
    """Return the integer code of a loss, checking it suits the output layer.

    Parameters
    ----------
    name : str
        ``"quadratic"`` or ``"cross_entropy"``.
    output_code : int
        Activation code of the network's output layer.

    Returns
    -------
    int
        The loss code.
    """
    if not isinstance(name, str) or name not in CODES:
        valid = ", ".join(repr(n) for n in CODES)
        raise ValueError(f"unknown loss {name!r}; expected one of {valid}")
    code = CODES[name]
    out_name = act.NAMES[output_code]
    if out_name not in VALID_OUTPUTS[code]:
        valid = ", ".join(repr(n) for n in VALID_OUTPUTS[code])
        raise ValueError(
            f"loss {name!r} needs an output activation among {valid}; the network's output layer is {out_name!r}"
        )
    return code
