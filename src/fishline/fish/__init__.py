"""The FISH track: the classifiers of painted nuclei (``classifier``: training, prediction
and evaluation of joint / ce / contrastive models), the shipped production classifier
(``release``), the spot-counting baseline (``spots``), UMAP views of the representations
(``umap``) and labelled real patch sets (``real_patches``). The painters are shared
(:mod:`fishline.paint`); slide calling is its own track (:mod:`fishline.slides`)."""
