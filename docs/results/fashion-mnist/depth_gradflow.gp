# drawn by `study`; redraw with: gnuplot depth_gradflow.gp
if (!exists('out')) out = 'depth_gradflow.png'
set terminal pngcairo noenhanced size 1184,600 font 'sans,10'
set output out
$grad << EOD
# docs/results/fashion-mnist/configs/VGG_08_seed0
0 0.00863175728
11 0.00313958775
12 0.00207536377
23 0.00230129855
24 0.00709109562
35 0.00837078336
36 0.0183702013
37 0.0854839859


# docs/results/fashion-mnist/configs/VGG_08_seed1
0 0.0158605246
11 0.0047023484
12 0.00534003421
23 0.0057682914
24 0.00730474402
35 0.00693190312
36 0.0141263611
37 0.0868560348


# docs/results/fashion-mnist/configs/VGG_08_seed2
0 0.0130861797
11 0.00297750677
12 0.0033370452
23 0.00469325834
24 0.0131410459
35 0.0171020245
36 0.0167551862
37 0.0861797923


# docs/results/fashion-mnist/configs/VGG_38_seed0
0 2.65126174e-18
1 2.00830876e-18
2 1.77137693e-18
3 2.1375395e-18
4 2.44951346e-18
5 2.75069394e-18
6 2.89827614e-18
7 2.32580868e-18
8 1.55285182e-18
9 1.66391446e-18
10 1.61702282e-18
11 1.66556858e-18
12 1.22470804e-15
13 2.02067703e-15
14 3.85271747e-15
15 4.38935818e-15
16 3.13993557e-15
17 3.48748943e-15
18 3.80838896e-15
19 3.65038225e-15
20 3.46945674e-15
21 4.60150463e-15
22 5.50869624e-15
23 5.58986411e-15
24 1.66035874e-10
25 2.47294929e-10
26 2.51803579e-10
27 3.71429936e-10
28 3.78709984e-10
29 3.13289929e-10
30 4.27088727e-10
31 3.94358932e-10
32 3.07026066e-10
33 4.51948469e-10
34 3.97204288e-10
35 6.8266109e-10
36 6.35641044e-05
37 0.00108362762


# docs/results/fashion-mnist/configs/VGG_38_seed1
0 6.40427835e-18
1 6.12875664e-18
2 7.441283e-18
3 8.68413854e-18
4 7.12828771e-18
5 6.33709659e-18
6 1.0053159e-17
7 6.47549033e-18
8 7.10325435e-18
9 6.66471592e-18
10 6.03725554e-18
11 4.83992282e-18
12 2.7084917e-15
13 8.23038835e-15
14 6.89743936e-15
15 5.98855754e-15
16 4.13022803e-15
17 4.52687951e-15
18 3.25390931e-15
19 4.20026953e-15
20 4.1121674e-15
21 7.32579862e-15
22 9.09893687e-15
23 8.93710367e-15
24 2.81856054e-10
25 4.49268219e-10
26 4.15337543e-10
27 4.42974912e-10
28 3.42996778e-10
29 4.03671108e-10
30 4.44745572e-10
31 4.42947863e-10
32 4.83971028e-10
33 5.30288725e-10
34 6.12194604e-10
35 1.80342488e-09
36 2.07019625e-05
37 0.000563545103


# docs/results/fashion-mnist/configs/VGG_38_seed2
0 1.48179323e-18
1 1.17273862e-18
2 1.03676678e-18
3 7.70282842e-19
4 6.66071828e-19
5 8.84456164e-19
6 8.09066144e-19
7 7.74203399e-19
8 8.8762841e-19
9 8.59231379e-19
10 1.03363012e-18
11 7.20239318e-19
12 2.41582262e-16
13 4.21239652e-16
14 5.75325748e-16
15 5.59509446e-16
16 8.44842751e-16
17 7.85199876e-16
18 1.16530769e-15
19 1.33028076e-15
20 1.44996199e-15
21 1.83056066e-15
22 2.30983502e-15
23 2.15680359e-15
24 7.05453892e-12
25 4.13578304e-11
26 5.13366226e-11
27 5.99300254e-11
28 6.75280694e-11
29 6.23981321e-11
30 7.27954764e-11
31 1.23313986e-10
32 1.19329925e-10
33 2.12901557e-10
34 1.86840258e-10
35 1.58484041e-10
36 3.43540983e-05
37 0.00102392874
EOD
set xtics rotate by 90 right ('input_conv_conv_0' 0, 'block_0_0_conv_0' 1, 'block_0_0_conv_1' 2, 'block_0_1_conv_0' 3, 'block_0_1_conv_1' 4, 'block_0_2_conv_0' 5, 'block_0_2_conv_1' 6, 'block_0_3_conv_0' 7, 'block_0_3_conv_1' 8, 'block_0_4_conv_0' 9, 'block_0_4_conv_1' 10, 'reduction_block_0_conv_0' 11, 'reduction_block_0_conv_1' 12, 'block_1_0_conv_0' 13, 'block_1_0_conv_1' 14, 'block_1_1_conv_0' 15, 'block_1_1_conv_1' 16, 'block_1_2_conv_0' 17, 'block_1_2_conv_1' 18, 'block_1_3_conv_0' 19, 'block_1_3_conv_1' 20, 'block_1_4_conv_0' 21, 'block_1_4_conv_1' 22, 'reduction_block_1_conv_0' 23, 'reduction_block_1_conv_1' 24, 'block_2_0_conv_0' 25, 'block_2_0_conv_1' 26, 'block_2_1_conv_0' 27, 'block_2_1_conv_1' 28, 'block_2_2_conv_0' 29, 'block_2_2_conv_1' 30, 'block_2_3_conv_0' 31, 'block_2_3_conv_1' 32, 'block_2_4_conv_0' 33, 'block_2_4_conv_1' 34, 'reduction_block_2_conv_0' 35, 'reduction_block_2_conv_1' 36, 'logit_linear_layer' 37)
set xrange [-0.5:37.5]
set grid
set key outside right top
set ylabel 'mean |dL/dW|'
set logscale y
set format y '%.0e'
set title 'depth: VGG_08 vs VGG_38, no batch norm'
plot $grad index 0 using 1:($2 > 0 ? $2 : NaN) with linespoints lw 1.5 pt 7 ps 0.5 lc 1 title 'VGG_08 (seed 0)', \
     $grad index 1 using 1:($2 > 0 ? $2 : NaN) with linespoints lw 1.5 pt 7 ps 0.5 lc 1 title 'VGG_08 (seed 1)', \
     $grad index 2 using 1:($2 > 0 ? $2 : NaN) with linespoints lw 1.5 pt 7 ps 0.5 lc 1 title 'VGG_08 (seed 2)', \
     $grad index 3 using 1:($2 > 0 ? $2 : NaN) with linespoints lw 1.5 pt 7 ps 0.5 lc 2 title 'VGG_38 (seed 0)', \
     $grad index 4 using 1:($2 > 0 ? $2 : NaN) with linespoints lw 1.5 pt 7 ps 0.5 lc 2 title 'VGG_38 (seed 1)', \
     $grad index 5 using 1:($2 > 0 ? $2 : NaN) with linespoints lw 1.5 pt 7 ps 0.5 lc 2 title 'VGG_38 (seed 2)'
