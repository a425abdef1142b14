// The uWebSockets.js build Shardtrack runs on, pinned in package.json (`uWebSockets.js` and
// the override of hyper-express's GitHub dependency, which npm cannot reach): the npm package
// @based/uws 6.0.1, a third-party re-publish of the official uWebSockets.js v20.51.0
// binaries (the version hyper-express 6.17 wants). Linux x64/arm64: ABI 108/115/127/131
// (Node 18/20/22/23) need glibc >= 2.27, ABI 137/141 (Node 24/25) glibc >= 2.38.
//
// Since it is a re-publish, the sha256 of every binary it ships is recorded here as it was
// first installed and checked by engine/http/uws.test.ts: a changed file fails the suite.
export const UWS_BUILD = {
  package: '@based/uws',
  packageVersion: '6.0.1',
  uws: 'v20.51.0',
  sourceCommit: '14bb3af6789a263804899d5440223b9e2a5a43e3', // the package's source_commit file
  sha256: {
    'uws_darwin_arm64_108.node': 'b57a862b936a8516e50ab38c519f670e9267f31c8e1213a44d3a3ca6ca6108cc',
    'uws_darwin_arm64_115.node': '4101bc97d2615caad7c3245e7af173d7acb3b96f00f73e72177e525fda47411d',
    'uws_darwin_arm64_127.node': 'add45881ffd3d3f1d8a219cb79eda88194311954c66e31b8b9eb54b2e66b2070',
    'uws_darwin_arm64_131.node': 'd19d747eb3d1f1d91d7ac17d840c4e82115aabeac46f1b8e77652ca6b25a06ed',
    'uws_darwin_arm64_137.node': 'ef598bf738024bef3a673765ee30d0036715181182b2481d65eaca8c7ba432ea',
    'uws_darwin_arm64_141.node': '167bcd3964e3ad0aa63c167491bdafb1c156026fdcb736040ee82d0ad3a1f4d1',
    'uws_darwin_x64_108.node': 'b1fd6654d1c526d9f536487961f7dcea0156904e888eccc1ddda6f6c34e9e06a',
    'uws_darwin_x64_115.node': '1dc168c284a2e82959fab15165529a6a2f0d58eddb60b013e628220adeb04e20',
    'uws_darwin_x64_127.node': '89b7db12853c5b0bb16af7e7e68a9bac79d6acaeeb658ed62a88f55fe85cd913',
    'uws_darwin_x64_131.node': '6c1d2042ad259a22595f7977061d84ebc136c9b72f697f377dc57386646211c2',
    'uws_darwin_x64_137.node': '6237397dd30a7207be00eb5694c468ec8c44115589d5a8e1c6f0b23117e4bb17',
    'uws_darwin_x64_141.node': '28a9b5e4a5413ddf0245157c6752685d4817476e06db8f8d171fbe8b8c3e186a',
    'uws_linux_arm64_108.node': '65aa4e3c554df77dec27bdab68cccd55c5ee3fd54e04cb4377e7f8cbebfc46a8',
    'uws_linux_arm64_115.node': '25a20c3ab1865fb38405833135531e331deae0d43998ae08aafda4c1461e531a',
    'uws_linux_arm64_127.node': '4bc72e11d391bf4c5e97a0e8e08481ca99ff7b3ad03c10f55643da983d24ef55',
    'uws_linux_arm64_131.node': 'c6ca2842482788cdceebc6976ac3810fe1f45f382eeaac7bd4a2cd9a669097aa',
    'uws_linux_arm64_137.node': 'ad0ffb42a119ee022ba1fc752d942e5a19b863ce47bfdc909cd1d5bc1363a7a6',
    'uws_linux_arm64_141.node': '0d5d90b098e82bdb461f276c614942b0a33d85c922e403861c0990cc961cd13f',
    'uws_linux_arm_108.node': '4accd5ac6da908e106b21769ace9b875e10a6d3692d56603f2432ca0c5c2fb6f',
    'uws_linux_arm_115.node': '8073763de8fbcd705fa38eacd817223751322958633ad625cd96ec10f5993d4b',
    'uws_linux_arm_127.node': 'd6b53f5aa87cf7927764e89cd7eee9602369d12c7c48535fca9ac640f0cbf7a5',
    'uws_linux_arm_131.node': '71712f25c80376028f14862aa481da2aa4db4dadcfb1a9c5ea61a070d608913a',
    'uws_linux_x64_108.node': '3207c4249038846165d8599c3811cfca0540fa68c94dcb58c96905cf117a5ddc',
    'uws_linux_x64_115.node': '4d482084b665c225892917ee0e9b9572d89eaa6f3dc200ff5e536293d3456c89',
    'uws_linux_x64_127.node': 'f687e7c3666b5cca9d355184bbf07bb0550f5ba0d3ffd453248ccfec552dde6c',
    'uws_linux_x64_131.node': 'ed86f2297e70febcc89138818c2ca503dad29783bc4bba2aa7cc6d9beba70739',
    'uws_linux_x64_137.node': '9aa8b857ac4ab0bfb1245e948eeeacc904b13a3608c9a281d551c43c66bea66e',
    'uws_linux_x64_141.node': '0958d6d6dd863240494539d02a34d41de24a2d7c1552c4a41efb3744ec56298e',
    'uws_win32_x64_108.node': '46cb0623d327f95f64519cc30f6ef7e6f57fd394f0c630fff4fe294dc3384ed7',
    'uws_win32_x64_115.node': 'f4c778d787dcce62cb94a4b3a515007f2e83dec54274a1c8d0e5e4f5cb9fb87b',
    'uws_win32_x64_127.node': 'bd772dbfae70b7ba3ecd505a38f50a9f608f65da5a83c662bc5d311736ba835b',
    'uws_win32_x64_131.node': 'f63fd4e88d038df576f6b973b0759bb37576ff595155daefecd3da44f8c0b86c',
    'uws_win32_x64_137.node': '510a1d22fcbeacd114d0ceac6726e18e4b1d4d2b8b08a09bd8aef43e6a4c876d',
    'uws_win32_x64_141.node': 'ae799fa3307381a9cb380a706e980b9538e832479a7876df8767d9e15f0db85c',
  } as Readonly<Record<string, string>>,
} as const;
