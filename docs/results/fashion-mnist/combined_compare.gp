# drawn by `study`; redraw with: gnuplot combined_compare.gp
if (!exists('out')) out = 'combined_compare.png'
set terminal pngcairo noenhanced size 1700,520 font 'sans,10'
set output out
$sum << EOD
# Default setting (seed 0)
1 1.52668276 0.950450611 0.4276 0.669
2 0.886747555 0.820318244 0.684 0.698
3 0.688713641 0.627603688 0.7536 0.767333333
4 0.609932502 0.577724617 0.779 0.783666667
5 0.53160704 0.510744765 0.8094 0.796666667


# Default setting (seed 1)
1 1.50666547 1.13130274 0.4671 0.577333333
2 0.847706131 0.8167989 0.6949 0.676666667
3 0.718259948 0.685631261 0.7421 0.731333333
4 0.587145455 0.530431258 0.7871 0.808666667
5 0.516829325 0.47426393 0.8154 0.827333333


# Default setting (seed 2)
1 1.50921858 1.13847794 0.4657 0.600666667
2 0.812420793 0.802299678 0.719 0.709333333
3 0.678869004 0.618709077 0.7553 0.766333333
4 0.574501698 0.524277505 0.7947 0.790666667
5 0.517975279 0.477797598 0.8136 0.818666667


# Weight decay=0.001; batch size=50 (seed 0)
1 1.35652811 0.832301523 0.4951 0.69
2 0.833778761 0.858417059 0.7075 0.691666667
3 0.676876163 0.645205542 0.7598 0.757666667
4 0.585264165 0.537375127 0.7881 0.784333333
5 0.509373354 0.478628532 0.8165 0.817


# Weight decay=0.001; batch size=50 (seed 1)
1 1.27509011 0.836641519 0.542 0.689333333
2 0.775547654 0.780861424 0.7237 0.716666667
3 0.658815188 0.622170942 0.7622 0.759
4 0.568135587 0.568878938 0.7949 0.785
5 0.509269418 0.462958325 0.8133 0.819666667


# Weight decay=0.001; batch size=50 (seed 2)
1 1.34457301 1.25550261 0.5225 0.547
2 0.800825435 0.690935254 0.7138 0.743666667
3 0.678005012 0.714996395 0.7569 0.741333333
4 0.580319702 0.504995156 0.7909 0.808333333
5 0.513944239 0.460288757 0.8144 0.818666667


# Weight decay=0.001; batch size=80 (seed 0)
1 1.44962141 0.893912797 0.4616 0.671
2 0.822934442 0.686644172 0.7112 0.744
3 0.668461804 0.638565834 0.7566 0.76
4 0.572162238 0.574151586 0.7884 0.782
5 0.498764045 0.471267081 0.8171 0.818333333


# Weight decay=0.001; batch size=80 (seed 1)
1 1.53659942 1.1441477 0.4363 0.587333333
2 0.828521312 0.714357722 0.7041 0.74
3 0.653404278 0.666441162 0.7632 0.741
4 0.578973195 0.620581798 0.7914 0.769666667
5 0.50787015 0.479100387 0.8158 0.824666667


# Weight decay=0.001; batch size=80 (seed 2)
1 1.51147743 0.935049771 0.4522 0.630666667
2 0.840051211 0.690362267 0.699 0.742333333
3 0.692592046 0.61022424 0.7511 0.771333333
4 0.593017223 0.536328336 0.792 0.794
5 0.524210435 0.472113366 0.8123 0.822333333
EOD
$grad << EOD
# Default setting (seed 0)
1 0.0310661027
2 0.0270579285
3 0.0125218794
4 0.0268898539
5 0.0223342078


# Default setting (seed 1)
1 0.0322316366
2 0.0513847412
3 0.0246291926
4 0.0262667949
5 0.0236354711


# Default setting (seed 2)
1 0.0153630103
2 0.0197854751
3 0.0148010055
4 0.0291922934
5 0.0188289859


# Weight decay=0.001; batch size=50 (seed 0)
1 0.0370338889
2 0.0233996453
3 0.0186404798
4 0.0219636827
5 0.0349172573


# Weight decay=0.001; batch size=50 (seed 1)
1 0.0330443476
2 0.010329053
3 0.0395184427
4 0.0146522323
5 0.0134514811


# Weight decay=0.001; batch size=50 (seed 2)
1 0.0286668187
2 0.0330208814
3 0.0222685251
4 0.0165895429
5 0.0218823846


# Weight decay=0.001; batch size=80 (seed 0)
1 0.0151864441
2 0.0287254003
3 0.0269374008
4 0.0255517787
5 0.0256208341


# Weight decay=0.001; batch size=80 (seed 1)
1 0.0237339445
2 0.0226607217
3 0.0197297411
4 0.0188275691
5 0.0121978363


# Weight decay=0.001; batch size=80 (seed 2)
1 0.0216008841
2 0.0399896367
3 0.0211609404
4 0.0358087769
5 0.0236321294
EOD
set grid
set xlabel 'epoch'
set key bottom left
set xtics 1
set multiplot layout 1,3 title 'combined: VGG_38 with BN after ReLU, weight decay 0.001 with smaller batches'
set title 'error: validation solid, training dashed'
set ylabel 'cross-entropy loss'
set key top right
plot $sum index 0 using 1:3 with linespoints lw 2 pt 7 ps 0.5 lc 1 title 'Default setting (seed 0)', \
     $sum index 0 using 1:2 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 1 notitle, \
     $sum index 1 using 1:3 with linespoints lw 2 pt 7 ps 0.5 lc 1 title 'Default setting (seed 1)', \
     $sum index 1 using 1:2 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 1 notitle, \
     $sum index 2 using 1:3 with linespoints lw 2 pt 7 ps 0.5 lc 1 title 'Default setting (seed 2)', \
     $sum index 2 using 1:2 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 1 notitle, \
     $sum index 3 using 1:3 with linespoints lw 2 pt 7 ps 0.5 lc 2 title 'Weight decay=0.001; batch size=50 (seed 0)', \
     $sum index 3 using 1:2 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 2 notitle, \
     $sum index 4 using 1:3 with linespoints lw 2 pt 7 ps 0.5 lc 2 title 'Weight decay=0.001; batch size=50 (seed 1)', \
     $sum index 4 using 1:2 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 2 notitle, \
     $sum index 5 using 1:3 with linespoints lw 2 pt 7 ps 0.5 lc 2 title 'Weight decay=0.001; batch size=50 (seed 2)', \
     $sum index 5 using 1:2 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 2 notitle, \
     $sum index 6 using 1:3 with linespoints lw 2 pt 7 ps 0.5 lc 3 title 'Weight decay=0.001; batch size=80 (seed 0)', \
     $sum index 6 using 1:2 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 3 notitle, \
     $sum index 7 using 1:3 with linespoints lw 2 pt 7 ps 0.5 lc 3 title 'Weight decay=0.001; batch size=80 (seed 1)', \
     $sum index 7 using 1:2 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 3 notitle, \
     $sum index 8 using 1:3 with linespoints lw 2 pt 7 ps 0.5 lc 3 title 'Weight decay=0.001; batch size=80 (seed 2)', \
     $sum index 8 using 1:2 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 3 notitle
set title 'accuracy: validation solid, training dashed'
set ylabel 'accuracy'
set key bottom right
plot $sum index 0 using 1:5 with linespoints lw 2 pt 7 ps 0.5 lc 1 title 'Default setting (seed 0)', \
     $sum index 0 using 1:4 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 1 notitle, \
     $sum index 1 using 1:5 with linespoints lw 2 pt 7 ps 0.5 lc 1 title 'Default setting (seed 1)', \
     $sum index 1 using 1:4 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 1 notitle, \
     $sum index 2 using 1:5 with linespoints lw 2 pt 7 ps 0.5 lc 1 title 'Default setting (seed 2)', \
     $sum index 2 using 1:4 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 1 notitle, \
     $sum index 3 using 1:5 with linespoints lw 2 pt 7 ps 0.5 lc 2 title 'Weight decay=0.001; batch size=50 (seed 0)', \
     $sum index 3 using 1:4 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 2 notitle, \
     $sum index 4 using 1:5 with linespoints lw 2 pt 7 ps 0.5 lc 2 title 'Weight decay=0.001; batch size=50 (seed 1)', \
     $sum index 4 using 1:4 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 2 notitle, \
     $sum index 5 using 1:5 with linespoints lw 2 pt 7 ps 0.5 lc 2 title 'Weight decay=0.001; batch size=50 (seed 2)', \
     $sum index 5 using 1:4 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 2 notitle, \
     $sum index 6 using 1:5 with linespoints lw 2 pt 7 ps 0.5 lc 3 title 'Weight decay=0.001; batch size=80 (seed 0)', \
     $sum index 6 using 1:4 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 3 notitle, \
     $sum index 7 using 1:5 with linespoints lw 2 pt 7 ps 0.5 lc 3 title 'Weight decay=0.001; batch size=80 (seed 1)', \
     $sum index 7 using 1:4 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 3 notitle, \
     $sum index 8 using 1:5 with linespoints lw 2 pt 7 ps 0.5 lc 3 title 'Weight decay=0.001; batch size=80 (seed 2)', \
     $sum index 8 using 1:4 with linespoints lw 1 dt 2 pt 6 ps 0.4 lc 3 notitle
set title 'mean |dL/dW| of the first conv layer (input_conv_conv_0)'
set ylabel 'mean |dL/dW|'
set logscale y
set format y '%.0e'
plot $grad index 0 using 1:($2 > 0 ? $2 : NaN) with linespoints lw 2 pt 7 ps 0.5 lc 1 notitle, \
     $grad index 1 using 1:($2 > 0 ? $2 : NaN) with linespoints lw 2 pt 7 ps 0.5 lc 1 notitle, \
     $grad index 2 using 1:($2 > 0 ? $2 : NaN) with linespoints lw 2 pt 7 ps 0.5 lc 1 notitle, \
     $grad index 3 using 1:($2 > 0 ? $2 : NaN) with linespoints lw 2 pt 7 ps 0.5 lc 2 notitle, \
     $grad index 4 using 1:($2 > 0 ? $2 : NaN) with linespoints lw 2 pt 7 ps 0.5 lc 2 notitle, \
     $grad index 5 using 1:($2 > 0 ? $2 : NaN) with linespoints lw 2 pt 7 ps 0.5 lc 2 notitle, \
     $grad index 6 using 1:($2 > 0 ? $2 : NaN) with linespoints lw 2 pt 7 ps 0.5 lc 3 notitle, \
     $grad index 7 using 1:($2 > 0 ? $2 : NaN) with linespoints lw 2 pt 7 ps 0.5 lc 3 notitle, \
     $grad index 8 using 1:($2 > 0 ? $2 : NaN) with linespoints lw 2 pt 7 ps 0.5 lc 3 notitle
unset multiplot
