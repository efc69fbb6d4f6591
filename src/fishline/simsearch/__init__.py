"""SimSearch (after Gupta et al.): human-in-the-loop ROI detection.

The user marks a few prototype patches; similarity search on CNN features proposes more;
flagged false proposals become negatives. The clean patches train SupCon with the negatives in
the denominator, then a linear head that detects objects with a sliding window; noisy patches
from the images not shown self-learn (pseudo-labels the trained model confirms, or the
paper's SimCLR).
"""
