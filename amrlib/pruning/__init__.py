"""Pruning: FCOS (channel stage + LaCD) and the shared surgery, plans and interface."""
from .api import PruneResult, PruningError
from .channel_stage import channel_stage
from .cluster import channel_features, cluster_channels
from .fcos import fcos
from .final_target import final_removals, match_final_target
from .fuse import fuse_cluster, fuse_consumer
from .lacd import diagnose_collapse, lacd
from .layers import remove_blocks
from .methods import METHODS, prune, prune_fcos
from .plan import rebuild
from .probes import block_features, fit_probe, probe_blocks
from .recalibrate import recalibrate_bn
from .surgery import apply_channel_mapping
