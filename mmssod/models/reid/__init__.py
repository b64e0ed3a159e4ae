"""SpCL (Ge et al., NeurIPS 2020): hybrid memory, sparse Jaccard, self-paced clustering, re-ID model."""

from .clustering import label_iou, reliable_labels, self_paced_clustering
from .hybrid_memory import HybridMemory, momentum_update, unified_contrastive_loss
from .jaccard import jaccard_distance
from .spcl import DomainSpecificBN, SpCLHead, SpCLReID, convert_dsbn, domain_mean_loss

__all__ = [
    'DomainSpecificBN',
    'HybridMemory',
    'SpCLHead',
    'SpCLReID',
    'convert_dsbn',
    'domain_mean_loss',
    'jaccard_distance',
    'label_iou',
    'momentum_update',
    'reliable_labels',
    'self_paced_clustering',
    'unified_contrastive_loss',
]
