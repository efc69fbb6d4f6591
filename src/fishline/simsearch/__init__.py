"""SimSearch (after Gupta et al.): human-in-the-loop ROI detection.

The user marks a few prototype patches; similarity search on CNN features proposes more;
flagged false proposals become negatives. Noisy patches from the images not shown train
SimCLR, the clean ones SupCon with the negatives in the denominator, then a linear head
detects objects with a sliding window.
"""
