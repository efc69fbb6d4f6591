"""The chromosome track: painted metaphases segmented and cut into crops (``crops``,
``realism``, ``figures``, ``finetune``), Brownian-bridge generation (``bbdm``) and its
CycleGAN baseline (``cyclegan``), the UMAP + Gaussian-mixture filter of generated crops
(``filter``), the aberration classifiers (``classifier``) and their comparison
(``compare``). Segmentation itself is shared with the slides track (:mod:`fishline.segment`)."""
