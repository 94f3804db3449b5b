"""The DaVinci Resolve plug-in: Workspace > Scripts > Utility > RVM Render Matte (see resolve_matte).

The API client comes from the installer's vendored ``rvm_render/`` beside this package or, when a
checkout's ``integrations/davinci`` is linked (or copied, with ``RVM_RENDER_HOME`` naming the checkout) into
``Fusion/Scripts/Utility``, from that checkout.
"""

import os
import sys

try:
    import rvm_render.api.client  # noqa: F401 (vendored beside this package by the installer)
except ImportError:  # from a checkout: copied, with RVM_RENDER_HOME naming it, or linked (found through the link)
    _linked_from = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__)))))
    sys.path.append(os.environ.get("RVM_RENDER_HOME") or _linked_from)
