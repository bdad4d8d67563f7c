"""fastbp: fully-connected networks trained by backpropagation, as compiled loops.

The δ formulation: δ^l = ∂C/∂z^l; ∂C/∂θ^l = δ^{l+1} (a^l)^T and
δ^l = ((θ^l)^T δ^{l+1}) ⊙ f'(z^l), so one sweep back from δ^L gives every
gradient.  See DESIGN.md for the notation.
"""

from .gradients import Gradients, backprop, gradcheck
from .network import Network

__version__ = "0.1.0"

__all__ = ["Gradients", "Network", "__version__", "backprop", "gradcheck"]
