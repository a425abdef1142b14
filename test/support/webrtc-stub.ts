// Stands in for `webrtc-polyfill` (node-datachannel's native build, which installs only with
// internet access) when the tests import the `bittorrent-tracker` client: the tests supply
// the offers and answers themselves, so no RTCPeerConnection is ever made.
function unavailable(): never {
  throw new Error('no WebRTC in the tests: they supply offers and answers themselves');
}
export class RTCPeerConnection {
  constructor() {
    unavailable();
  }
}
export class RTCSessionDescription {
  constructor() {
    unavailable();
  }
}
export class RTCIceCandidate {
  constructor() {
    unavailable();
  }
}
export default { RTCPeerConnection, RTCSessionDescription, RTCIceCandidate };
