"""The DaVinci Resolve plug-in: Workspace > Scripts > Utility > RVM Render Matte (see resolve_matte).

The API client comes from the installer's vendored ``rvm_render/`` beside this package or, when a
checkout's ``integrations/davinci`` is linked into ``Fusion/Scripts/Utility``, from that checkout.
"""

import os
import sys

try:
    import rvm_render.api.client  # noqa: F401 (vendored beside this package by the installer)
except ImportError:  # linked from a checkout: <checkout>/integrations/davinci/rvm_render_davinci/
    sys.path.append(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))))
