"""MYCN calls on whole FISH slides: a slide sheet's fields (``sheet``, ``fields``) -> Cellpose
nuclei and crops in the classifier's patch geometry (``cells``) -> per-cell class and
certainty -> per-sample verdict (``verdicts``); ``stages`` runs it from files to files,
``figures`` draws the overlays, cards and galleries."""
